"""The emulated cluster's object store: the API server's write semantics and a direct in-process API."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs

from hfwizard.sandbox.emulator import semantics
from hfwizard.sandbox.emulator.api import JSON, ApiError, ResourceType, WatchEvent, conflict, now
from hfwizard.sandbox.emulator.catalogue import Catalogue
from hfwizard.sandbox.emulator.patches import merge_patch

__all__ = ["Store"]

_WATCH_HISTORY = 5000  # events kept so a watch can resume from a recent resourceVersion
_Key = tuple[str, str | None, str]


@attrs.define(kw_only=True)
class Store:
    """Objects by (resource, namespace, name), resourceVersions, watch history and subscribers.

    The HTTP server, the seeding helpers and the controllers all write through here; `save` (set
    by whoever owns the state file) runs after every write so a SIGKILL loses nothing committed.
    """

    catalogue: Catalogue = attrs.field(factory=Catalogue.bundled)
    strict_namespaces: bool = True
    state_file: Path | None = None
    rv: int = 1
    objects: dict[_Key, JSON] = attrs.field(factory=dict)
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    history: collections.deque[WatchEvent] = attrs.field(
        factory=lambda: collections.deque(maxlen=_WATCH_HISTORY)
    )
    closing: bool = False
    seeded: bool = False  # the seed (nodes, StorageClass...) is complete; saved with the objects
    cloud: str = "generic"  # whose cluster this plays (load-balancer addresses, served cloud kinds)
    _subscribers: set[asyncio.Queue[WatchEvent | None]] = attrs.field(factory=set, init=False)
    on_write: Callable[[Store], None] | None = None
    # The same objects by resource, so a list or a watch's filter reads one resource's objects, not all.
    _by_resource: dict[str, dict[_Key, JSON]] = attrs.field(factory=dict, init=False)
    # What changed since the last `saved()`: the state file's log records exactly these (None: removed).
    _changed: dict[_Key, JSON | None] = attrs.field(factory=dict, init=False)

    # ---- low level (the caller holds the lock) --------------------------------------------------

    @staticmethod
    def key(info: ResourceType, namespace: str | None, name: str) -> _Key:
        return (info.key, namespace if info.namespaced else None, name)

    def get(self, info: ResourceType, namespace: str | None, name: str) -> JSON | None:
        return self.objects.get(self.key(info, namespace, name))

    def items(self, info: ResourceType, namespace: str | None) -> list[JSON]:
        return [
            obj
            for (_, ns, _), obj in list(self._by_resource.get(info.key, {}).items())
            if namespace is None or ns == namespace
        ]

    def load(self, info: ResourceType, obj: JSON) -> None:
        """Take an object as it was saved (the state file's loader): no event, no new resourceVersion."""
        key = self.key(info, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.objects[key] = obj
        self._by_resource.setdefault(info.key, {})[key] = obj

    def take_changes(self) -> dict[_Key, JSON | None]:
        """The objects written (None: removed) since the last call, as they stand now."""
        changed, self._changed = self._changed, {}
        return {key: self.objects.get(key) for key in changed}

    def put(self, info: ResourceType, obj: JSON, event: str) -> JSON:
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        key = self.key(info, meta.get("namespace"), meta["name"])
        self.objects[key] = obj
        self._by_resource.setdefault(info.key, {})[key] = obj
        self._changed[key] = obj
        self._publish(WatchEvent(event, info, copy.deepcopy(obj), self.rv))
        return obj

    def remove(self, info: ResourceType, obj: JSON) -> JSON:
        self.rv += 1
        meta = obj["metadata"]
        key = self.key(info, meta.get("namespace"), meta["name"])
        self.objects.pop(key, None)
        self._by_resource.get(info.key, {}).pop(key, None)
        self._changed[key] = None
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._publish(WatchEvent("DELETED", info, gone, self.rv))
        self._collect_garbage(
            meta.get("uid"),
            cascade_namespace=(info.kind == "Namespace" and not info.group and meta["name"]),
        )
        return gone

    def _collect_garbage(self, uid: str | None, cascade_namespace: str | bool) -> None:
        # Owner references and namespace deletion cascade at once: there is no GC controller to wait for.
        doomed: list[tuple[ResourceType, JSON]] = []
        for info in list(self.catalogue.types.values()):
            for item in self.items(info, None):
                meta = item["metadata"]
                owned = uid and any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or [])
                in_ns = cascade_namespace and info.namespaced and meta.get("namespace") == cascade_namespace
                if owned or in_ns:
                    doomed.append((info, item))
        for info, item in doomed:
            if self.get(info, item["metadata"].get("namespace"), item["metadata"]["name"]) is not None:
                self.remove(info, item)

    def _publish(self, event: WatchEvent) -> None:
        self.history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    def saved(self) -> None:
        if self.on_write is not None:
            self.on_write(self)

    # ---- object semantics ----------------------------------------------------------------------

    def create(
        self, info: ResourceType, namespace: str | None, obj: JSON, *, keep_status: bool, keep_managed: bool = False
    ) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f"{info.kind} is invalid: metadata.name: Required value")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if info.namespaced:
            meta["namespace"] = self._namespace_for(namespace, meta.get("namespace"))
        else:
            meta.pop("namespace", None)
        if self.get(info, meta.get("namespace"), meta["name"]) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{info.qualified} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": info.group, "kind": info.plural},
            )
        obj["apiVersion"] = info.group_version
        obj["kind"] = info.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        for transient in ("resourceVersion", "deletionTimestamp", "selfLink", "managedFields"):
            if transient != "managedFields" or not keep_managed:
                meta.pop(transient, None)
        if "status" in info.subresources and not keep_status:
            obj.pop("status", None)  # as the apiserver: only the status subresource writes status
        semantics.on_create(info, obj, self.rv, cloud=self.cloud, node_ports=self._node_ports(info, obj))
        if info.kind == "CustomResourceDefinition":
            self.catalogue.register_crd(obj)
        return self.put(info, obj, "ADDED")

    def _namespace_for(self, url_ns: str | None, body_ns: str | None) -> str:
        if url_ns and body_ns and body_ns != url_ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        namespace = url_ns or body_ns or "default"
        namespaces = self.catalogue.types[("", "v1", "namespaces")]
        if self.strict_namespaces and self.get(namespaces, None, namespace) is None:
            raise ApiError(
                404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
            )
        return namespace

    def replace(
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
            raise conflict(info, old_meta["name"])
        if meta.get("name") and meta["name"] != old_meta["name"]:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if status_only:
            result = copy.deepcopy(existing)
            result["status"] = copy.deepcopy(new.get("status"))
            if result["status"] is None:
                result.pop("status")
        else:
            result = self._replaced(info, existing, new, keep_old_status=keep_old_status)
        if result == existing:
            return existing  # a no-op write keeps the resourceVersion, as the apiserver does
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return self.remove(info, result)
        return self.put(info, result, "MODIFIED")

    def _replaced(self, info: ResourceType, existing: JSON, new: JSON, *, keep_old_status: bool) -> JSON:
        old_meta = existing["metadata"]
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
        semantics.on_update(info, result, existing, cloud=self.cloud, node_ports=self._node_ports(info, result))
        spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        if spec_of(result) != spec_of(existing):
            result["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if info.kind == "CustomResourceDefinition":
            self.catalogue.register_crd(result)
        return result

    def _node_ports(self, info: ResourceType, obj: JSON) -> set[int]:
        if info.group or info.kind != "Service":
            return set()
        me = (obj["metadata"].get("namespace"), obj["metadata"].get("name"))
        return {
            int(port["nodePort"])
            for svc in self.items(info, None)
            if (svc["metadata"].get("namespace"), svc["metadata"]["name"]) != me
            for port in (svc.get("spec") or {}).get("ports") or []
            if port.get("nodePort")
        }

    def delete(self, info: ResourceType, existing: JSON, options: JSON) -> JSON:
        want_rv = (options.get("preconditions") or {}).get("resourceVersion")
        if want_rv and want_rv != existing["metadata"].get("resourceVersion"):
            raise conflict(info, existing["metadata"]["name"])
        if existing["metadata"].get("finalizers"):
            if not existing["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(existing)
                marked["metadata"]["deletionTimestamp"] = now()
                return self.put(info, marked, "MODIFIED")
            return existing
        return self.remove(info, existing)

    # ---- direct (in-process) API: seeding helpers and the controllers use these ------------------

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        return self.catalogue.resource_type(api_version, kind)

    async def upsert(self, obj: JSON, *, keep_status: bool = False) -> JSON:
        """Create or replace an object directly (no HTTP); metadata is filled in as for a POST."""
        async with self.lock:
            result = self.upsert_locked(obj, keep_status=keep_status)
            self.saved()
            return copy.deepcopy(result)

    def upsert_locked(self, obj: JSON, *, keep_status: bool = False) -> JSON:
        info = self.resource_type(obj["apiVersion"], obj["kind"])
        meta = obj.setdefault("metadata", {})
        if not info.namespaced:
            meta.pop("namespace", None)
        existing = self.get(info, meta.get("namespace"), meta["name"])
        if existing is None:
            return self.create(info, meta.get("namespace"), obj, keep_status=True)
        new = copy.deepcopy(obj)
        if keep_status and "status" in existing:
            new["status"] = existing["status"]
        return self.replace(info, existing, new, status_only=False, check_rv=False, keep_old_status=keep_status)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: JSON
    ) -> JSON | None:
        """Merge `status` into an object's status (the controllers' write path)."""
        async with self.lock:
            info = self.resource_type(api_version, kind)
            existing = self.get(info, namespace, name)
            if existing is None:
                return None
            merged = merge_patch(existing.get("status") or {}, status)  # leaves `existing` as it is
            if merged == existing.get("status"):
                return existing  # nothing changes: no copy, no write (controllers re-say the same status often)
            new = copy.deepcopy(existing)
            new["status"] = merged
            result = self.replace(info, existing, new, status_only=True, check_rv=False)
            self.saved()
            return copy.deepcopy(result)

    async def delete_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        async with self.lock:
            info = self.resource_type(api_version, kind)
            existing = self.get(info, namespace, name)
            if existing is None:
                return False
            self.remove(info, existing)
            self.saved()
            return True

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        obj = self.get(self.resource_type(api_version, kind), namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def peek_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        """The stored object itself, not a copy: for a controller that only reads it (see peek_objects)."""
        return self.get(self.resource_type(api_version, kind), namespace, name)

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        return copy.deepcopy(self.items(self.resource_type(api_version, kind), namespace))

    def peek_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        """The stored objects themselves, not copies: for controllers that only read them. Copying every
        Pod on every event was a third of the emulator's CPU once the state file stopped being rewritten."""
        return self.items(self.resource_type(api_version, kind), namespace)

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
        self.closing = True
        for queue in list(self._subscribers):
            queue.put_nowait(None)
