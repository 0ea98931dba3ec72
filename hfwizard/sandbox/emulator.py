"""An emulated Kubernetes API server on loopback (kmock's KubernetesEmulator plus our own semantics)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import copy
import datetime
import gzip
import importlib.resources
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import aiohttp.web
import attrs
import kmock
import yaml

__all__ = [
    "ApiError",
    "ClusterThread",
    "EmulatedCluster",
    "SandboxEmulator",
    "WatchEvent",
    "decode_protobuf",
]

T = TypeVar("T")
JSON = dict[str, Any]
PROTOBUF = "application/vnd.kubernetes.protobuf"
_WATCH_HISTORY = 5000  # events kept so a watch can resume from a recent resourceVersion


# --------------------------------------------------------------------------------------------------
# errors


class ApiError(Exception):
    """A Kubernetes API error: rendered as a `Status` object so client-go maps it to its typed errors."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JSON:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _not_found(info: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{info.qualified} "{name}" not found',
        {"name": name, "group": info.group, "kind": info.plural},
    )


def _conflict(info: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {info.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": info.group, "kind": info.plural},
    )


# --------------------------------------------------------------------------------------------------
# protobuf: client-go sends typed core objects as `k8s\0` + runtime.Unknown; we decode the few we need.

# Field numbers from k8s.io/api core/v1 and k8s.io/apimachinery meta/v1 generated.proto.
# A spec is {field number: (json name, kind)}; kind is "str", "bytes", "int", "bool", "time",
# ("msg", spec), ("map", value kind), ("list", kind).
_TIME = "time"
_OWNER_REF: dict[int, tuple[str, Any]] = {
    1: ("kind", "str"),
    3: ("name", "str"),
    4: ("uid", "str"),
    5: ("apiVersion", "str"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_OBJECT_META: dict[int, tuple[str, Any]] = {
    1: ("name", "str"),
    2: ("generateName", "str"),
    3: ("namespace", "str"),
    4: ("selfLink", "str"),
    5: ("uid", "str"),
    6: ("resourceVersion", "str"),
    7: ("generation", "int"),
    8: ("creationTimestamp", _TIME),
    9: ("deletionTimestamp", _TIME),
    10: ("deletionGracePeriodSeconds", "int"),
    11: ("labels", ("map", "str")),
    12: ("annotations", ("map", "str")),
    13: ("ownerReferences", ("list", ("msg", _OWNER_REF))),
    14: ("finalizers", ("list", "str")),
}
_PROTO_KINDS: dict[str, dict[int, tuple[str, Any]]] = {
    "Secret": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("data", ("map", "bytes")),
        3: ("type", "str"),
        4: ("stringData", ("map", "str")),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("data", ("map", "str")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    "Namespace": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("spec", ("msg", {1: ("finalizers", ("list", "str"))})),
        3: ("status", ("msg", {1: ("phase", "str")})),
    },
    "ServiceAccount": {1: ("metadata", ("msg", _OBJECT_META)), 4: ("automountServiceAccountToken", "bool")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", ("msg", {1: ("uid", "str"), 2: ("resourceVersion", "str")})),
        3: ("orphanDependents", "bool"),
        4: ("propagationPolicy", "str"),
        5: ("dryRun", ("list", "str")),
    },
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterable[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            yield number, buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _scalar(kind: Any, raw: int | bytes) -> Any:
    import base64

    if kind == "str":
        return bytes(raw).decode() if isinstance(raw, bytes) else str(raw)
    if kind == "bytes":
        return base64.b64encode(bytes(raw) if isinstance(raw, bytes) else b"").decode()
    if kind == "int":
        value = int(raw) if isinstance(raw, int) else 0
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == "bool":
        return bool(raw)
    if kind == _TIME:
        seconds = 0
        for number, field_value in _fields(bytes(raw) if isinstance(raw, bytes) else b""):
            if number == 1 and isinstance(field_value, int):
                seconds = field_value
        stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(kind, tuple) and kind[0] == "msg":
        return _message(bytes(raw) if isinstance(raw, bytes) else b"", kind[1])
    raise ValueError(f"unsupported protobuf field kind {kind!r}")


def _message(buf: bytes, spec: Mapping[int, tuple[str, Any]]) -> JSON:
    out: JSON = {}
    for number, raw in _fields(buf):
        if number not in spec:
            continue  # fields we do not model (managedFields, status details...) are dropped
        name, kind = spec[number]
        if isinstance(kind, tuple) and kind[0] == "map":
            key = value = None
            for entry_number, entry_raw in _fields(bytes(raw) if isinstance(raw, bytes) else b""):
                if entry_number == 1:
                    key = _scalar("str", entry_raw)
                elif entry_number == 2:
                    value = _scalar(kind[1], entry_raw)
            out.setdefault(name, {})[key or ""] = (
                value if value is not None else ("" if kind[1] in ("str", "bytes") else None)
            )
        elif isinstance(kind, tuple) and kind[0] == "list":
            out.setdefault(name, []).append(_scalar(kind[1], raw))
        else:
            out[name] = _scalar(kind, raw)
    return out


def _drop_empty_strings(meta: JSON) -> JSON:
    # Go's protobuf marshaller writes empty strings; "" namespace would file the object in no namespace.
    return {key: value for key, value in meta.items() if value != ""}


def decode_protobuf(body: bytes) -> JSON:
    """Decode a client-go protobuf body (`k8s\\0` + runtime.Unknown) into the object's JSON form."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[4:]):
        if number == 1 and isinstance(value, bytes):
            for type_number, type_value in _fields(value):
                if type_number == 1:
                    api_version = _scalar("str", type_value)
                elif type_number == 2:
                    kind = _scalar("str", type_value)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    spec = _PROTO_KINDS.get(kind)
    if spec is None:
        raise ValueError(f"protobuf body of kind {kind!r} is not supported by the emulator")
    obj = _message(raw, spec)
    if "metadata" in obj:
        obj["metadata"] = _drop_empty_strings(obj["metadata"])
    if kind != "DeleteOptions" or api_version:
        obj = {"apiVersion": api_version, "kind": kind, **obj}
    return obj


# --------------------------------------------------------------------------------------------------
# resource catalogue


@attrs.frozen
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}"

    def kmock_resource(self) -> kmock.resource:
        return kmock.resource(group=self.group, version=self.version, plural=self.plural)


def _bundled_discovery() -> list[JSON]:
    data = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
    docs = cast(list[JSON], json.loads(gzip.decompress(data)))
    for doc in docs:
        # The apiserver's lists come from a k3s cluster; kmock serves "/v1" for the core group.
        doc["groupVersion"] = doc["groupVersion"].lstrip("/")
    return docs


# --------------------------------------------------------------------------------------------------
# selectors and patches


def _label_term(part: str) -> Callable[[Mapping[str, str]], bool]:
    if m := re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part):
        key, values = m.group(1), {v.strip() for v in m.group(3).split(",")}
        inside = m.group(2) == "in"
        return lambda labels: (labels.get(key) in values) == inside
    if m := re.fullmatch(r"([^\s!=]+)\s*(!=|==|=)\s*(\S*)", part):
        key, value, equal = m.group(1), m.group(3), m.group(2) != "!="
        return lambda labels: (labels.get(key) == value) == equal
    if part.startswith("!"):
        absent = part[1:].strip()
        return lambda labels: absent not in labels
    return lambda labels: part in labels


def _label_matcher(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", selector or "") if p.strip()]
    terms = [_label_term(part) for part in parts]
    return lambda labels: all(term(labels) for term in terms)


def _field_matcher(selector: str | None) -> Callable[[JSON], bool]:
    if not selector:
        return lambda _obj: True
    terms: list[tuple[list[str], str, bool]] = []
    for part in selector.split(","):
        if m := re.fullmatch(r"\s*([\w.]+)\s*(!=|==|=)\s*(.*?)\s*", part):
            terms.append((m.group(1).split("."), m.group(3), m.group(2) != "!="))

    def lookup(obj: JSON, path: list[str]) -> str:
        value: Any = obj
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        return "" if value is None else str(value)

    return lambda obj: all((lookup(obj, path) == want) == equal for path, want, equal in terms)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _strategic_merge(target: Any, patch: Any) -> Any:
    """Approximate strategic merge patch: lists of named items merge by `name`; directives honoured."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            merged = {item.get("name"): item for item in result.get(key) or [] if isinstance(item, dict)}
            order = [item.get("name") for item in result.get(key) or [] if isinstance(item, dict)]
            for item in value:
                name = item["name"]
                if item.get("$patch") == "delete":
                    merged.pop(name, None)
                    continue
                if name not in merged:
                    order.append(name)
                merged[name] = _strategic_merge(merged.get(name), item)
            result[key] = [merged[n] for n in order if n in merged]
        else:
            merged_value = _strategic_merge(result.get(key), value)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _json_patch(target: JSON, ops: list[JSON]) -> JSON:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    doc: Any = copy.deepcopy(target)

    def split(path: str) -> list[str]:
        return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]

    def walk(path: list[str]) -> tuple[Any, str]:
        node = doc
        for step in path[:-1]:
            node = node[int(step)] if isinstance(node, list) else node[step]
        return node, path[-1]

    def get(path: str) -> Any:
        node = doc
        for step in split(path):
            node = node[int(step)] if isinstance(node, list) else node[step]
        return node

    for op in ops:
        kind, path = op["op"], op.get("path", "")
        if kind in ("copy", "move"):
            value = copy.deepcopy(get(op["from"]))
            if kind == "move":
                parent, last = walk(split(op["from"]))
                del parent[int(last) if isinstance(parent, list) else last]
            kind, op = "add", {"path": path, "value": value}
        if kind == "test":
            if get(path) != op.get("value"):
                raise ApiError(422, "Invalid", f"test operation failed at {path}")
            continue
        parent, last = walk(split(path))
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "replace":
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ApiError(400, "BadRequest", f"unsupported JSON patch operation {kind!r}")
    return cast(JSON, doc)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# the emulator


@attrs.frozen
class WatchEvent:
    """One change in the emulator: the controller player and watch streams consume these."""

    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    object: JSON
    resource_version: int


@attrs.define(kw_only=True)
class SandboxEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the verbs, metadata and discovery real client-go and Helm need.

    kmock's own mutation path only merges dicts: no resourceVersions, no PUT, no selectors, and
    error reasons client-go does not recognise. This subclass takes over every resource request,
    keeping the objects in kmock's `objects` array and kmock's server, request parsing and
    bundled resource list underneath.
    """

    git_version: str = "v1.32.3"
    state_file: Path | None = None
    strict_namespaces: bool = True
    denied: set[tuple[str, str]] = attrs.field(factory=set)

    _catalogue: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict, init=False)
    _discovery: dict[str, JSON] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=1, init=False)
    _history: collections.deque[WatchEvent] = attrs.field(
        factory=lambda: collections.deque(maxlen=_WATCH_HISTORY), init=False
    )
    _subscribers: set[asyncio.Queue[WatchEvent | None]] = attrs.field(factory=set, init=False)
    _store_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    protobuf_kinds: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock's own discovery stays consistent with ours (load_bundled uses a deprecated API).
        self.resources.load_path(
            str(importlib.resources.files("kmock._internal").joinpath("resources.json.gz"))
        )
        for doc in _bundled_discovery():
            self._add_discovery(doc)

    # ---- catalogue ---------------------------------------------------------------------------

    def _add_discovery(self, doc: JSON) -> None:
        group_version = doc["groupVersion"]
        group, _, version = group_version.rpartition("/")
        self._discovery[group_version] = doc
        subresources: dict[str, set[str]] = collections.defaultdict(set)
        for res in doc.get("resources", []):
            plural, _, sub = res["name"].partition("/")
            if sub:
                subresources[plural].add(sub)
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            self._catalogue[(group, version, res["name"])] = ResourceType(
                group=group,
                version=version,
                plural=res["name"],
                kind=res["kind"],
                namespaced=bool(res.get("namespaced")),
                subresources=frozenset(subresources[res["name"]]),
            )

    def _register_crd(self, crd: JSON) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for version in spec.get("versions", []):
            if not version.get("served", True):
                continue
            group_version = f"{spec['group']}/{version['name']}"
            doc = self._discovery.setdefault(
                group_version,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": [],
                },
            )
            doc["resources"] = [r for r in doc["resources"] if r["name"].split("/")[0] != names["plural"]]
            entry = {
                "name": names["plural"],
                "singularName": names.get("singular", ""),
                "namespaced": spec.get("scope") == "Namespaced",
                "kind": names["kind"],
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": names.get("shortNames", []),
            }
            doc["resources"].append(entry)
            if "status" in (version.get("subresources") or {}):
                doc["resources"].append(
                    {
                        "name": f"{names['plural']}/status",
                        "singularName": "",
                        "namespaced": entry["namespaced"],
                        "kind": names["kind"],
                        "verbs": ["get", "patch", "update"],
                    }
                )
            self._add_discovery(doc)

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """The catalogue entry for an apiVersion and kind (e.g. "apps/v1", "Deployment")."""
        group, _, version = api_version.rpartition("/")
        for info in self._catalogue.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        raise KeyError(f"{api_version} {kind} is not served by the emulator")

    # ---- store -------------------------------------------------------------------------------

    def _key(self, info: ResourceType, namespace: str | None, name: str) -> tuple[Any, str | None, str]:
        return (info.kmock_resource(), namespace if info.namespaced else None, name)

    def _get(self, info: ResourceType, namespace: str | None, name: str) -> JSON | None:
        key = self._key(info, namespace, name)
        if key not in self.objects:
            return None
        obj = self.objects[key]
        return None if obj.deleted else cast(JSON, obj.raw)

    def _items(self, info: ResourceType, namespace: str | None) -> list[JSON]:
        wanted = info.kmock_resource()
        return [
            cast(JSON, obj.raw)
            for (res, ns, _), obj in list(self.objects.items())
            if res == wanted and not obj.deleted and (namespace is None or ns == namespace)
        ]

    def _put(self, info: ResourceType, obj: JSON, event: str) -> JSON:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        key = self._key(info, meta.get("namespace"), meta["name"])
        # Hard replacement: kmock would keep every past version in memory; a long sandbox run should not.
        self.objects[key] = obj
        self._publish(WatchEvent(event, info, copy.deepcopy(obj), self._rv))
        return obj

    def _remove(self, info: ResourceType, obj: JSON) -> JSON:
        self._rv += 1
        meta = obj["metadata"]
        key = self._key(info, meta.get("namespace"), meta["name"])
        if key in self.objects:
            del self.objects[key]
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._publish(WatchEvent("DELETED", info, gone, self._rv))
        self._collect_garbage(
            meta.get("uid"),
            meta.get("namespace"),
            cascade_namespace=(info.kind == "Namespace" and not info.group and meta["name"]),
        )
        return gone

    def _collect_garbage(self, uid: str | None, namespace: str | None, cascade_namespace: str | bool) -> None:
        # Owner references and namespace deletion cascade at once: there is no GC controller to wait for.
        doomed: list[tuple[ResourceType, JSON]] = []
        for info in list(self._catalogue.values()):
            for item in self._items(info, None):
                meta = item["metadata"]
                owned = uid and any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or [])
                in_ns = cascade_namespace and info.namespaced and meta.get("namespace") == cascade_namespace
                if owned or in_ns:
                    doomed.append((info, item))
        for info, item in doomed:
            if self._get(info, item["metadata"].get("namespace"), item["metadata"]["name"]) is not None:
                self._remove(info, item)

    def _publish(self, event: WatchEvent) -> None:
        self._history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    # ---- persistence -------------------------------------------------------------------------

    def load_state(self) -> bool:
        """Load objects from the state file, if there is one; True when something was loaded."""
        if self.state_file is None or not self.state_file.exists():
            return False
        state = json.loads(self.state_file.read_text())
        for crd in state.get("crds", []):
            self._register_crd(crd)
        for entry in state.get("objects", []):
            group, version, plural = entry["resource"].split("/")
            info = self._catalogue.get((group, version, plural))
            if info is None:
                continue
            obj = entry["object"]
            self.objects[self._key(info, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
        self._rv = max(int(state.get("resourceVersion", 1)), self._rv)
        return True

    def save_state(self) -> None:
        """Write every object to the state file atomically: temp file, fsync, rename, directory fsync."""
        if self.state_file is None:
            return
        objects = []
        crds = []
        for info in self._catalogue.values():
            for obj in self._items(info, None):
                objects.append({"resource": info.key, "object": obj})
                if info.kind == "CustomResourceDefinition":
                    crds.append(obj)
        payload = json.dumps(
            {"resourceVersion": self._rv, "crds": crds, "objects": objects}, separators=(",", ":")
        ).encode()
        directory = self.state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.state_file.name}.", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # ---- direct (in-process) API: seeding helpers and the controller player use these ----------

    async def upsert(self, obj: JSON, *, keep_status: bool = False) -> JSON:
        """Create or replace an object directly (no HTTP); metadata is filled in as for a POST."""
        async with self._store_lock:
            info = self.resource_type(obj["apiVersion"], obj["kind"])
            meta = obj.setdefault("metadata", {})
            if not info.namespaced:
                meta.pop("namespace", None)
            existing = self._get(info, meta.get("namespace"), meta["name"])
            if existing is None:
                result = self._create(info, meta.get("namespace"), obj, keep_status=True)
            else:
                new = copy.deepcopy(obj)
                if keep_status and "status" in existing:
                    new["status"] = existing["status"]
                result = self._replace(
                    info, existing, new, status_only=False, check_rv=False, keep_old_status=keep_status
                )
            self.save_state()
            return copy.deepcopy(result)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: JSON
    ) -> JSON | None:
        """Merge `status` into an object's status (the controller player's write path)."""
        async with self._store_lock:
            info = self.resource_type(api_version, kind)
            existing = self._get(info, namespace, name)
            if existing is None:
                return None
            new = copy.deepcopy(existing)
            new["status"] = _merge_patch(existing.get("status") or {}, status)
            if new["status"] == existing.get("status"):
                return existing
            result = self._replace(info, existing, new, status_only=True, check_rv=False)
            self.save_state()
            return copy.deepcopy(result)

    async def delete_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        async with self._store_lock:
            info = self.resource_type(api_version, kind)
            existing = self._get(info, namespace, name)
            if existing is None:
                return False
            self._remove(info, existing)
            self.save_state()
            return True

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        info = self.resource_type(api_version, kind)
        obj = self._get(info, namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        info = self.resource_type(api_version, kind)
        return copy.deepcopy(self._items(info, namespace))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[WatchEvent | None]]:
        """A queue of every change from now on; `None` means the emulator is stopping."""
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def close_streams(self) -> None:
        self._closing = True
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    # ---- object semantics --------------------------------------------------------------------

    def _create(self, info: ResourceType, namespace: str | None, obj: JSON, *, keep_status: bool) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f"{info.kind} is invalid: metadata.name: Required value")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if info.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace or body_ns or "default"
            if self.strict_namespaces and self._get(self._namespaces, None, meta["namespace"]) is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{meta["namespace"]}" not found',
                    {"name": meta["namespace"], "kind": "namespaces"},
                )
        else:
            meta.pop("namespace", None)
        if self._get(info, meta.get("namespace"), meta["name"]) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{info.qualified} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": info.group, "kind": info.plural},
            )
        obj["apiVersion"] = info.group_version
        obj["kind"] = info.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        for transient in ("resourceVersion", "deletionTimestamp", "selfLink", "managedFields"):
            meta.pop(transient, None)
        if "status" in info.subresources and not keep_status:
            obj.pop("status", None)  # as the apiserver: only the status subresource writes status
        self._defaults(info, obj)
        return self._put(info, obj, "ADDED")

    @property
    def _namespaces(self) -> ResourceType:
        return self._catalogue[("", "v1", "namespaces")]

    def _defaults(self, info: ResourceType, obj: JSON) -> None:
        # The few defaults that readiness checks and clients read back.
        if info.kind == "Namespace" and not info.group:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif info.kind == "Service" and not info.group:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                spec["clusterIP"] = f"10.96.{self._rv % 250}.{(self._rv // 250) % 250 + 1}"
                spec["clusterIPs"] = [spec["clusterIP"]]
        elif info.kind == "CustomResourceDefinition":
            self._register_crd(obj)
            obj["status"] = {
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "lastTransitionTime": _now(),
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "lastTransitionTime": _now(),
                    },
                ],
                "acceptedNames": obj.get("spec", {}).get("names", {}),
                "storedVersions": [
                    v["name"] for v in obj.get("spec", {}).get("versions", []) if v.get("storage")
                ],
            }
        elif info.kind == "PersistentVolumeClaim" and not info.group:
            obj["status"] = {
                "phase": "Bound",
                "accessModes": obj.get("spec", {}).get("accessModes", []),
                "capacity": obj.get("spec", {}).get("resources", {}).get("requests", {}),
            }

    def _replace(
        self,
        info: ResourceType,
        existing: JSON,
        new: JSON,
        *,
        status_only: bool,
        check_rv: bool,
        keep_old_status: bool = True,
    ) -> JSON:
        meta = new.setdefault("metadata", {})
        old_meta = existing["metadata"]
        sent_rv = meta.get("resourceVersion")
        if check_rv and sent_rv and sent_rv != old_meta.get("resourceVersion"):
            raise _conflict(info, old_meta["name"])
        if meta.get("name") and meta["name"] != old_meta["name"]:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if status_only:
            result = copy.deepcopy(existing)
            result["status"] = copy.deepcopy(new.get("status"))
            if result["status"] is None:
                result.pop("status")
        else:
            result = copy.deepcopy(new)
            result["apiVersion"] = info.group_version
            result["kind"] = info.kind
            for field in ("uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp"):
                if field in old_meta:
                    result["metadata"][field] = old_meta[field]
                else:
                    result["metadata"].pop(field, None)
            if keep_old_status and "status" in info.subresources and info.kind != "Node":
                if "status" in existing:
                    result["status"] = copy.deepcopy(existing["status"])
                else:
                    result.pop("status", None)
            spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
            if spec_of(result) != spec_of(existing):
                result["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
            if info.kind == "CustomResourceDefinition":
                self._register_crd(result)
        if result == existing:
            return existing  # a no-op write keeps the resourceVersion, as the apiserver does
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return self._remove(info, result)
        return self._put(info, result, "MODIFIED")

    # ---- HTTP --------------------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock's entry point would decode every body as text (protobuf is not text) and keep every
        # request in memory; a long-running sandbox wants neither, so requests come straight here.
        body = await raw.read()
        try:
            return await self._dispatch(raw, body)
        except ApiError as exc:
            return aiohttp.web.json_response(exc.status(), status=exc.code)
        except Exception as exc:  # a bug in the emulator must reach the client as a 500, not a hang
            error = ApiError(500, "InternalError", f"emulator error: {exc!r}")
            return aiohttp.web.json_response(error.status(), status=500)

    async def _dispatch(self, raw: aiohttp.web.BaseRequest, raw_body: bytes) -> aiohttp.web.StreamResponse:
        path = raw.path.rstrip("/") or "/"
        method = raw.method.upper()
        segments = path.strip("/").split("/")
        if method == "GET":
            if path == "/version":
                return aiohttp.web.json_response(self._version_info())
            if path == "/api":
                return aiohttp.web.json_response(
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": raw.host}
                        ],
                    }
                )
            if path == "/apis":
                return aiohttp.web.json_response(self._group_list())
            if (segments[0] == "api" and len(segments) == 2) or (
                segments[0] == "apis" and len(segments) == 3
            ):
                doc = self._discovery.get("/".join(segments[1:]))
                if doc is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return aiohttp.web.json_response(doc)
            if segments[0] == "apis" and len(segments) == 2:
                for group in self._group_list()["groups"]:
                    if group["name"] == segments[1]:
                        return aiohttp.web.json_response({"kind": "APIGroup", "apiVersion": "v1", **group})
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if path in ("/healthz", "/livez", "/readyz"):
                return aiohttp.web.Response(text="ok")
            if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
                return aiohttp.web.json_response(
                    self._openapi_v3(path.removeprefix("/openapi/v3").strip("/"))
                )
        parsed = self._parse_path(segments)
        if parsed is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        info, namespace, name, subresource = parsed
        body = self._body(raw, raw_body)
        params = raw.query

        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(raw, info, namespace, name, params)
        if method == "GET" and name is None:
            return aiohttp.web.json_response(self._list(info, namespace, params))
        if (
            method == "POST"
            and info.group == "authorization.k8s.io"
            and info.plural.endswith("accessreviews")
        ):
            return aiohttp.web.json_response(self._review(info, body), status=201)
        if method == "DELETE" and name is None:
            return aiohttp.web.json_response(await self._delete_collection(info, namespace, params))

        async with self._store_lock:
            if method == "GET":
                obj = self._get(info, namespace, name or "")
                if obj is None:
                    raise _not_found(info, name or "")
                return aiohttp.web.json_response(obj)
            if method == "POST" and name is None:
                if params.get("dryRun"):
                    return aiohttp.web.json_response(body, status=201)
                result = self._create(info, namespace, body, keep_status=info.kind == "Node")
                status = 201
            elif method == "PUT" and name is not None:
                existing = self._get(info, namespace, name)
                if existing is None:
                    raise _not_found(info, name)
                result = self._replace(
                    info, existing, body, status_only=subresource == "status", check_rv=True
                )
                status = 200
            elif method == "PATCH" and name is not None:
                result, status = self._patch(info, namespace, name, subresource, body, raw)
            elif method == "DELETE" and name is not None:
                result = self._delete(info, namespace, name, body)
                status = 200
            else:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")
            self.save_state()
        return aiohttp.web.json_response(result, status=status)

    def _version_info(self) -> JSON:
        m = re.match(r"v(\d+)\.(\d+)", self.git_version)
        major, minor = (m.group(1), m.group(2)) if m else ("1", "32")
        return {
            "major": major,
            "minor": minor,
            "gitVersion": self.git_version,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2025-03-11T19:52:21Z",
            "goVersion": "go1.23.6",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _openapi_v3(self, group_version_path: str) -> JSON:
        # Just enough OpenAPI v3 for kubectl's validator (used by Helm) to see that the server does
        # field validation itself: each kind appears with its x-kubernetes-group-version-kind.
        # Without it Helm falls back to client-side validation and needs the protobuf /openapi/v2.
        if not group_version_path:
            return {
                "paths": {
                    (f"apis/{gv}" if "/" in gv else f"api/{gv}"): {
                        "serverRelativeURL": f"/openapi/v3/{'apis' if '/' in gv else 'api'}/{gv}"
                        f"?hash={self._rv}"
                    }
                    for gv in self._discovery
                }
            }
        group_version = group_version_path.split("/", 1)[1] if "/" in group_version_path else ""
        doc = self._discovery.get(group_version)
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, _, version = group_version.rpartition("/")
        prefix = f"/apis/{group_version}" if group else f"/api/{version}"
        paths: JSON = {}
        schemas: JSON = {}
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            gvk = {"group": group, "version": version, "kind": res["kind"]}
            scope = "/namespaces/{namespace}" if res.get("namespaced") else ""
            # kubectl's QueryParamVerifierV3 looks for a PATCH operation tagged with the kind that
            # accepts the fieldValidation query parameter.
            paths[f"{prefix}{scope}/{res['name']}/{{name}}"] = {
                "patch": {
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "OK"}},
                }
            }
            schemas[f"{group or 'core'}.{version}.{res['kind']}"] = {
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (emulated)", "version": self.git_version},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def _group_list(self) -> JSON:
        groups: dict[str, list[str]] = {}
        for group_version in self._discovery:
            if "/" in group_version:
                group, version = group_version.split("/")
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
                }
                for group, versions in groups.items()
            ],
        }

    def _parse_path(
        self, segments: list[str]
    ) -> tuple[ResourceType, str | None, str | None, str | None] | None:
        if segments[0] == "api" and len(segments) >= 3:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[0] == "apis" and len(segments) >= 4:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            return None
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in self._catalogue:
            namespace, rest = rest[1], rest[2:]
        info = self._catalogue.get((group, version, rest[0]))
        if info is None:
            return None
        name = rest[1] if len(rest) > 1 else None
        subresource = "/".join(rest[2:]) or None
        return info, namespace, name, subresource

    def _body(self, raw: aiohttp.web.BaseRequest, body: bytes) -> JSON:
        if not body:
            return {}
        content_type = raw.headers.get("Content-Type", "")
        if content_type.startswith(PROTOBUF):
            try:
                decoded = decode_protobuf(body)
            except (ValueError, IndexError) as exc:
                raise ApiError(415, "UnsupportedMediaType", str(exc)) from exc
            self.protobuf_kinds[decoded.get("kind") or "DeleteOptions"] += 1
            return decoded
        try:
            data = json.loads(body)
        except ValueError:
            try:
                data = yaml.safe_load(body)  # apply patches may be YAML
            except yaml.YAMLError as exc:
                raise ApiError(400, "BadRequest", f"the body could not be decoded: {exc}") from exc
        if not isinstance(data, dict | list):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        return cast(JSON, data)

    def _list(self, info: ResourceType, namespace: str | None, params: Mapping[str, str]) -> JSON:
        labels = _label_matcher(params.get("labelSelector"))
        fields = _field_matcher(params.get("fieldSelector"))
        items = [
            obj
            for obj in self._items(info, namespace)
            if labels(obj["metadata"].get("labels") or {}) and fields(obj)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return {
            "kind": f"{info.kind}List",
            "apiVersion": info.group_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    async def _watch(
        self,
        raw: aiohttp.web.BaseRequest,
        info: ResourceType,
        namespace: str | None,
        name: str | None,
        params: Mapping[str, str],
    ) -> aiohttp.web.StreamResponse:
        labels = _label_matcher(params.get("labelSelector"))
        fields = _field_matcher(params.get("fieldSelector"))
        if name is not None:
            fields_inner = fields
            fields = lambda o: o["metadata"]["name"] == name and fields_inner(o)  # noqa: E731
        want_bookmarks = params.get("allowWatchBookmarks") == "true"
        timeout = float(params.get("timeoutSeconds") or 1800)
        since = params.get("resourceVersion") or "0"

        def matches(event: WatchEvent) -> bool:
            meta = event.object["metadata"]
            return (
                event.resource == info
                and (namespace is None or meta.get("namespace") == namespace)
                and labels(meta.get("labels") or {})
                and fields(event.object)
            )

        async with self.subscribe() as queue:
            initial: list[JSON] = []
            if params.get("sendInitialEvents") == "true" or since == "0":
                initial = [
                    {"type": "ADDED", "object": obj}
                    for obj in self._items(info, namespace)
                    if labels(obj["metadata"].get("labels") or {}) and fields(obj)
                ]
            else:
                start = int(since)
                if self._history and start < self._history[0].resource_version - 1 and start < self._rv:
                    raise ApiError(410, "Expired", f"too old resource version: {start} ({self._rv})")
                initial = [
                    {"type": e.type, "object": e.object}
                    for e in self._history
                    if e.resource_version > start and matches(e)
                ]
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(raw)
            for event_body in initial:
                await response.write(json.dumps(event_body).encode() + b"\n")
            if params.get("sendInitialEvents") == "true" and want_bookmarks:
                bookmark = {
                    "kind": info.kind,
                    "apiVersion": info.group_version,
                    "metadata": {
                        "resourceVersion": str(self._rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                await response.write(json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n")
            deadline = asyncio.get_running_loop().time() + timeout
            while not self._closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=min(remaining, 5.0))
                except TimeoutError:
                    continue
                if event is None:
                    break
                if matches(event):
                    try:
                        await response.write(
                            json.dumps({"type": event.type, "object": event.object}).encode() + b"\n"
                        )
                    except (ConnectionResetError, RuntimeError):
                        break
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await response.write_eof()
            return response

    def _review(self, info: ResourceType, body: JSON) -> JSON:
        attrs_ = (
            body.get("spec", {}).get("resourceAttributes")
            or body.get("spec", {}).get("nonResourceAttributes")
            or {}
        )
        verb, resource = attrs_.get("verb", ""), attrs_.get("resource") or attrs_.get("path", "")
        denied = any((v in (verb, "*")) and (r in (resource, "*")) for v, r in self.denied)
        result = copy.deepcopy(body)
        result.setdefault("apiVersion", info.group_version)
        result.setdefault("kind", info.kind)
        result["status"] = {
            "allowed": not denied,
            **(
                {"denied": True, "reason": "denied by the sandbox"}
                if denied
                else {"reason": "allowed by the sandbox"}
            ),
        }
        return result

    def _patch(
        self,
        info: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
        body: Any,
        raw: aiohttp.web.BaseRequest,
    ) -> tuple[JSON, int]:
        content_type = raw.headers.get("Content-Type", "").split(";")[0].strip()
        existing = self._get(info, namespace, name)
        if existing is None:
            if content_type == "application/apply-patch+yaml":
                body.setdefault("metadata", {})["name"] = name
                return self._create(info, namespace, body, keep_status=False), 201
            raise _not_found(info, name)
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            new = _json_patch(existing, body)
        elif content_type == "application/strategic-merge-patch+json":
            new = cast(JSON, _strategic_merge(existing, body))
        elif content_type in ("application/merge-patch+json", "application/apply-patch+yaml"):
            # Server-side apply is approximated by a merge: field ownership is not tracked.
            new = cast(JSON, _merge_patch(existing, body))
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
        sent_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if sent_rv and sent_rv != existing["metadata"].get("resourceVersion"):
            raise _conflict(info, name)
        new.setdefault("metadata", {})["resourceVersion"] = existing["metadata"].get("resourceVersion")
        return self._replace(info, existing, new, status_only=subresource == "status", check_rv=False), 200

    def _delete(self, info: ResourceType, namespace: str | None, name: str, options: JSON) -> JSON:
        existing = self._get(info, namespace, name)
        if existing is None:
            raise _not_found(info, name)
        want_rv = (options.get("preconditions") or {}).get("resourceVersion")
        if want_rv and want_rv != existing["metadata"].get("resourceVersion"):
            raise _conflict(info, name)
        if existing["metadata"].get("finalizers"):
            if not existing["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(existing)
                marked["metadata"]["deletionTimestamp"] = _now()
                return self._put(info, marked, "MODIFIED")
            return existing
        return self._remove(info, existing)

    async def _delete_collection(
        self, info: ResourceType, namespace: str | None, params: Mapping[str, str]
    ) -> JSON:
        async with self._store_lock:
            listing = self._list(info, namespace, params)
            for obj in listing["items"]:
                self._delete(info, obj["metadata"].get("namespace"), obj["metadata"]["name"], {})
            self.save_state()
        return listing


# --------------------------------------------------------------------------------------------------
# the cluster: server + seeding helpers


def _quantity_bytes(value: str) -> int:
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
    }
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


class EmulatedCluster:
    """An emulated Kubernetes cluster on loopback: `async with EmulatedCluster(...) as cluster:`."""

    def __init__(
        self,
        *,
        state_file: str | os.PathLike[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        version: str = "v1.32.3",
        strict_namespaces: bool = True,
    ) -> None:
        self.emulator = SandboxEmulator(
            git_version=version,
            state_file=Path(state_file) if state_file else None,
            strict_namespaces=strict_namespaces,
        )
        self._host = host
        self._port = port
        self._server: kmock.Server | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulated cluster is not running")
        return f"http://{self._host}:{self._server.port}"

    @property
    def version(self) -> str:
        return self.emulator.git_version

    @version.setter
    def version(self, value: str) -> None:
        self.emulator.git_version = value

    @property
    def denied(self) -> set[tuple[str, str]]:
        """(verb, resource) pairs a SelfSubjectAccessReview answers "not allowed" ("*" matches any)."""
        return self.emulator.denied

    async def __aenter__(self) -> Self:
        await self.emulator.__aenter__()
        loaded = self.emulator.load_state()
        if not loaded:
            for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                await self.emulator.upsert(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )
        self._server = kmock.Server(self.emulator, host=self._host, port=self._port or None, user_agent="")
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.emulator.close_streams()
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None
        await self.emulator.__aexit__(None, None, None)

    def kubeconfig(self, context: str = "sandbox") -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "sandbox"}}],  # the emulator checks no credentials
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}
            ],
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "sandbox") -> Path:
        """Write a kubeconfig for this cluster (mode 0600) and return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(self.kubeconfig(context), handle, sort_keys=False)
        os.chmod(target, 0o600)
        return target

    # ---- seeding -----------------------------------------------------------------------------

    async def add_node(
        self,
        name: str,
        *,
        cpu: str = "8",
        memory: str = "32Gi",
        ready: bool = True,
        labels: Mapping[str, str] | None = None,
        kubelet_version: str | None = None,
        allocatable_cpu: str | None = None,
        allocatable_memory: str | None = None,
        pods: str = "110",
        role: str = "worker",
    ) -> JSON:
        """Create or replace a Node: capacity, allocatable, labels, a Ready condition, kubeletVersion."""
        node_labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            f"node-role.kubernetes.io/{role}": "",
            **(labels or {}),
        }
        if allocatable_memory is None:
            # kubelet reserves some memory: allocatable is a little below capacity, as on real nodes.
            allocatable_memory = f"{max(_quantity_bytes(memory) - 512 * 2**20, 0) // 2**10}Ki"
        now = _now()
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": node_labels},
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {
                "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                "allocatable": {"cpu": allocatable_cpu or cpu, "memory": allocatable_memory, "pods": pods},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "False",
                        "reason": "KubeletReady" if ready else "KubeletNotReady",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": kubelet_version or self.version,
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.7.23",
                    "osImage": "Sandbox Linux",
                    "kernelVersion": "6.1.0",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
                "addresses": [
                    {"type": "InternalIP", "address": "10.0.0.10"},
                    {"type": "Hostname", "address": name},
                ],
            },
        }
        return await self.emulator.upsert(node)

    async def add_storage_class(
        self, name: str = "standard", *, default: bool = True, provisioner: str = "rancher.io/local-path"
    ) -> JSON:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return await self.emulator.upsert(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name, "annotations": annotations},
                "provisioner": provisioner,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )

    async def add_ingress_class(
        self, name: str = "nginx", *, controller: str = "k8s.io/ingress-nginx", default: bool = False
    ) -> JSON:
        annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
        return await self.emulator.upsert(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"controller": controller},
            }
        )

    async def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> JSON:
        return await self.emulator.upsert(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels or {})},
            }
        )

    async def seed_default(self, *, workers: int = 6, cpu: str = "8", memory: str = "32Gi") -> None:
        """The cluster the seed document asks for: N Ready workers, a default StorageClass, nginx class."""
        for index in range(workers):
            await self.add_node(f"worker-{index + 1}", cpu=cpu, memory=memory)
        await self.add_storage_class()
        await self.add_ingress_class("nginx")


# --------------------------------------------------------------------------------------------------
# a thread-backed wrapper for sync code and tests


class ClusterThread:
    """Runs an EmulatedCluster (and optionally the controller player) on its own loop in a thread."""

    def __init__(
        self,
        *,
        controllers: bool = True,
        ready_delay: float = 0.0,
        step_delay: float = 0.0,
        **cluster_kwargs: Any,
    ) -> None:
        self._kwargs = cluster_kwargs
        self._controllers_enabled = controllers
        self._ready_delay = ready_delay
        self._step_delay = step_delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.cluster: EmulatedCluster | None = None
        self.controllers: Any = None  # hfwizard.sandbox.controllers.ControllerPlayer when enabled

    def start(self, timeout: float = 10.0) -> Self:
        self._thread = threading.Thread(target=self._run, name="emulated-cluster", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the emulated cluster did not start in time")
        if self._error is not None:
            raise RuntimeError("the emulated cluster failed to start") from self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with EmulatedCluster(**self._kwargs) as cluster:
                self.cluster = cluster
                player = None
                if self._controllers_enabled:
                    from hfwizard.sandbox.controllers import ControllerPlayer

                    player = ControllerPlayer(
                        cluster.emulator, ready_delay=self._ready_delay, step_delay=self._step_delay
                    )
                    await player.start()
                    self.controllers = player
                self._ready.set()
                await self._stop.wait()
                if player is not None:
                    await player.stop()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def call(self, fn: Callable[[EmulatedCluster], Coroutine[Any, Any, T]], timeout: float = 10.0) -> T:
        """Run `fn(cluster)` on the cluster's loop and return its result."""
        assert self._loop is not None and self.cluster is not None
        return asyncio.run_coroutine_threadsafe(fn(self.cluster), self._loop).result(timeout)

    @property
    def url(self) -> str:
        assert self.cluster is not None
        return self.cluster.url

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "sandbox") -> Path:
        assert self.cluster is not None
        return self.cluster.write_kubeconfig(path, context)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------
# `python -m hfwizard.sandbox.emulator`: a cluster in its own process that outlives the installer


async def _serve(args: argparse.Namespace) -> None:
    from hfwizard.sandbox.controllers import ControllerPlayer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmulatedCluster(state_file=args.state, port=args.port, version=args.version) as cluster:
        fresh = not cluster.emulator.list_objects("v1", "Node")
        if fresh and args.workers:
            await cluster.seed_default(workers=args.workers, cpu=args.cpu, memory=args.memory)
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig, context=args.context)
        player = None
        if not args.no_controllers:
            player = ControllerPlayer(
                cluster.emulator, ready_delay=args.ready_delay, step_delay=args.step_delay
            )
            await player.start()
        print(
            json.dumps(
                {
                    "event": "ready",
                    "url": cluster.url,
                    "pid": os.getpid(),
                    "kubeconfig": str(args.kubeconfig) if args.kubeconfig else None,
                }
            ),
            flush=True,
        )
        await stop.wait()
        if player is not None:
            await player.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hfwizard.sandbox.emulator", description="Run an emulated Kubernetes API on loopback."
    )
    parser.add_argument("--state", type=Path, help="state file: objects survive a restart (even SIGKILL)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig here (mode 0600)")
    parser.add_argument("--context", default="sandbox")
    parser.add_argument("--version", default="v1.32.3", help="the server's gitVersion")
    parser.add_argument("--workers", type=int, default=6, help="Ready worker nodes to seed on a fresh state")
    parser.add_argument("--cpu", default="8")
    parser.add_argument("--memory", default="32Gi")
    parser.add_argument(
        "--ready-delay", type=float, default=0.0, help="seconds before a workload turns ready"
    )
    parser.add_argument(
        "--step-delay", type=float, default=0.0, help="seconds between replicas turning ready"
    )
    parser.add_argument("--no-controllers", action="store_true")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
