"""The emulated API's HTTP layer: a kmock emulator that hands every request to our store."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import re
from collections.abc import Mapping
from typing import Any, cast

import aiohttp.web
import attrs
import kmock
import yaml

from hfwizard.sandbox.emulator.api import JSON, ApiError, ResourceType, WatchEvent, conflict, not_found
from hfwizard.sandbox.emulator.apply import apply, record_update
from hfwizard.sandbox.emulator.catalogue import Catalogue
from hfwizard.sandbox.emulator.controllers.logs import ContainerLogs, pod_log
from hfwizard.sandbox.emulator.patches import json_patch, merge_patch, strategic_merge
from hfwizard.sandbox.emulator.protocol import PROTOBUF, decode_protobuf
from hfwizard.sandbox.emulator.selectors import field_matcher, label_matcher
from hfwizard.sandbox.emulator.semantics import fold_string_data
from hfwizard.sandbox.emulator.store import Store
from hfwizard.sandbox.emulator.validation import unknown_fields

__all__ = ["SandboxEmulator"]


def _manager(raw: aiohttp.web.BaseRequest) -> str:
    # As the API server: the fieldManager parameter, else the client's name from its User-Agent.
    return raw.query.get("fieldManager") or raw.headers.get("User-Agent", "unknown").split("/")[0] or "unknown"


def _strict(store: Store, raw: aiohttp.web.BaseRequest, info: ResourceType, obj: Any) -> None:
    # fieldValidation=Strict (Helm asks for it): unknown fields are refused, in the decoder's words.
    if not isinstance(obj, dict):
        return
    strict = raw.query.get("fieldValidation") == "Strict"
    # Without Strict the decoder drops unknown fields (Warn would also send a Warning header).
    unknown = unknown_fields(info, obj, _crd_of(store, info), prune=not strict)
    if unknown and strict:
        fields = ", ".join(f'unknown field "{path}"' for path in unknown)
        what = f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}'
        raise ApiError(400, "BadRequest", f"{what}: strict decoding error: {fields}")


def _typed(store: Store, info: ResourceType, namespace: str | None, name: str, config: JSON) -> None:
    # Server-side apply needs a typed object whatever fieldValidation says: an unknown field fails it.
    unknown = unknown_fields(info, config, _crd_of(store, info), keyed=True)
    if unknown:
        where = f"{namespace}/{name}" if namespace else name
        api = f"{info.group_version}, Kind={info.kind}"
        details = "; ".join(f".{path}: field not declared in schema" for path in unknown)
        raise ApiError(500, "", f"failed to create typed patch object ({where}; {api}): {details}")


def _crd_of(store: Store, info: ResourceType) -> JSON | None:
    if not info.group or "." not in info.group or info.group.endswith(".k8s.io"):
        return None
    crds = store.catalogue.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    return store.get(crds, None, f"{info.plural}.{info.group}") if crds is not None else None


def _track(info: ResourceType, existing: JSON, new: JSON, manager: str) -> None:
    # A client sending managedFields back (read-modify-write) does not get to rewrite ownership.
    new.setdefault("metadata", {})["managedFields"] = copy.deepcopy(existing["metadata"].get("managedFields"))
    record_update(info, existing, new, manager)

_NOT_FOUND = "the server could not find the requested resource"
_OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_EMPTY_SWAGGER = b"\x0a\x032.0"
_Parsed = tuple[ResourceType, str | None, str | None, str | None]


@attrs.define(kw_only=True)
class SandboxEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the verbs, metadata and discovery real client-go and Helm need.

    kmock's own mutation path only merges dicts: no resourceVersions, no PUT, no selectors, and
    error reasons client-go does not recognise. This subclass takes over every request and keeps
    the objects in a `Store`; kmock's server and bundled resource list stay underneath.
    """

    store: Store = attrs.field(factory=Store)
    git_version: str = "v1.32.3"
    denied: set[tuple[str, str]] = attrs.field(factory=set)
    logs: ContainerLogs = attrs.field(factory=ContainerLogs)  # written by the controller player
    protobuf_kinds: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        Catalogue.load_into(self)

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
            answer = self._discovery_answer(raw, path, segments)
            if answer is not None:
                return answer
        parsed = self._parse_path(segments)
        if parsed is None:
            raise ApiError(404, "NotFound", _NOT_FOUND)
        info, namespace, name, subresource = parsed
        if method == "GET" and subresource == "log" and name is not None and info.key == "/v1/pods":
            data = pod_log(self.store, self.logs, namespace, name, raw.query)
            return aiohttp.web.Response(body=data, content_type="text/plain")
        body = self._body(raw, raw_body)
        params = raw.query
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(raw, info, namespace, name, params)
        if method == "GET" and name is None:
            return aiohttp.web.json_response(self._list(info, namespace, params))
        if method == "POST" and info.group == "authorization.k8s.io" and info.plural.endswith("accessreviews"):
            return aiohttp.web.json_response(self._review(info, body), status=201)
        if method == "DELETE" and name is None:
            return aiohttp.web.json_response(await self._delete_collection(info, namespace, params))
        async with self.store.lock:
            result, status = self._write(raw, method, path, parsed, body)
            self.store.saved()
        return aiohttp.web.json_response(result, status=status)

    def _write(
        self, raw: aiohttp.web.BaseRequest, method: str, path: str, parsed: _Parsed, body: Any
    ) -> tuple[JSON, int]:
        info, namespace, name, subresource = parsed
        store = self.store
        if method == "GET":
            obj = store.get(info, namespace, name or "")
            if obj is None:
                raise not_found(info, name or "")
            return obj, 200
        if method == "POST" and name is None:
            if raw.query.get("dryRun"):
                if info.kind == "Secret" and not info.group:
                    fold_string_data(body)  # even a dry run never echoes stringData back
                return body, 201
            _strict(store, raw, info, body)
            body.setdefault("metadata", {}).pop("managedFields", None)
            record_update(info, None, body, _manager(raw))
            return store.create(info, namespace, body, keep_status=info.kind == "Node", keep_managed=True), 201
        if method == "PUT" and name is not None:
            existing = store.get(info, namespace, name)
            if existing is None:
                raise not_found(info, name)
            if subresource != "status":
                _strict(store, raw, info, body)
                _track(info, existing, body, _manager(raw))
            return store.replace(info, existing, body, status_only=subresource == "status", check_rv=True), 200
        if method == "PATCH" and name is not None:
            return self._patch(info, namespace, name, subresource, body, raw)
        if method == "DELETE" and name is not None:
            existing = store.get(info, namespace, name)
            if existing is None:
                raise not_found(info, name)
            return store.delete(info, existing, body), 200
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    # ---- discovery -----------------------------------------------------------------------------

    def _discovery_answer(
        self, raw: aiohttp.web.BaseRequest, path: str, segments: list[str]
    ) -> aiohttp.web.StreamResponse | None:
        catalogue = self.store.catalogue
        if path == "/version":
            return aiohttp.web.json_response(self._version_info())
        if path == "/api":
            return aiohttp.web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": raw.host}],
                }
            )
        if path == "/apis":
            return aiohttp.web.json_response(catalogue.group_list())
        if (segments[0] == "api" and len(segments) == 2) or (segments[0] == "apis" and len(segments) == 3):
            doc = catalogue.discovery.get("/".join(segments[1:]))
            if doc is None:
                raise ApiError(404, "NotFound", _NOT_FOUND)
            return aiohttp.web.json_response(doc)
        if segments[0] == "apis" and len(segments) == 2:
            for group in catalogue.group_list()["groups"]:
                if group["name"] == segments[1]:
                    return aiohttp.web.json_response({"kind": "APIGroup", "apiVersion": "v1", **group})
            raise ApiError(404, "NotFound", _NOT_FOUND)
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/openapi/v2":
            # An empty Swagger 2.0 document (gnostic protobuf: field 1, swagger = "2.0"). kubectl's
            # validator falls back to it for a group/version missing from /openapi/v3; finding no
            # schema there it lets the manifest through, and the REST mapping then names the missing
            # kind ("no matches for kind ... ensure CRDs are installed first") as on a real cluster.
            return aiohttp.web.Response(body=_EMPTY_SWAGGER, content_type=_OPENAPI_V2_PROTOBUF)
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            doc = catalogue.openapi_v3(
                path.removeprefix("/openapi/v3").strip("/"), git_version=self.git_version, revision=self.store.rv
            )
            return aiohttp.web.json_response(doc)
        return None

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

    # ---- requests ------------------------------------------------------------------------------

    def _parse_path(self, segments: list[str]) -> _Parsed | None:
        if segments[0] == "api" and len(segments) >= 3:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[0] == "apis" and len(segments) >= 4:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            return None
        catalogue = self.store.catalogue
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and catalogue.get(group, version, rest[2]) is not None:
            namespace, rest = rest[1], rest[2:]
        info = catalogue.get(group, version, rest[0])
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
        labels = label_matcher(params.get("labelSelector"))
        fields = field_matcher(params.get("fieldSelector"))
        items = [
            obj
            for obj in self.store.items(info, namespace)
            if labels(obj["metadata"].get("labels") or {}) and fields(obj)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return {
            "kind": f"{info.kind}List",
            "apiVersion": info.group_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
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
        labels = label_matcher(params.get("labelSelector"))
        fields = field_matcher(params.get("fieldSelector"))

        def selected(obj: JSON) -> bool:
            meta = obj["metadata"]
            return (
                (name is None or meta["name"] == name)
                and (namespace is None or meta.get("namespace") == namespace)
                and labels(meta.get("labels") or {})
                and fields(obj)
            )

        async with self.store.subscribe() as queue:
            initial = self._watch_backlog(info, params, selected)
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(raw)
            for event_body in initial:
                await response.write(json.dumps(event_body).encode() + b"\n")
            if params.get("sendInitialEvents") == "true" and params.get("allowWatchBookmarks") == "true":
                bookmark = {
                    "kind": info.kind,
                    "apiVersion": info.group_version,
                    "metadata": {
                        "resourceVersion": str(self.store.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                await response.write(json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n")
            await self._stream(response, queue, info, selected, float(params.get("timeoutSeconds") or 1800))
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await response.write_eof()
            return response

    def _watch_backlog(self, info: ResourceType, params: Mapping[str, str], selected: Any) -> list[JSON]:
        since = params.get("resourceVersion") or "0"
        if params.get("sendInitialEvents") == "true" or since == "0":
            return [{"type": "ADDED", "object": obj} for obj in self.store.items(info, None) if selected(obj)]
        start = int(since)
        history = self.store.history
        if history and start < history[0].resource_version - 1 and start < self.store.rv:
            raise ApiError(410, "Expired", f"too old resource version: {start} ({self.store.rv})")
        return [
            {"type": e.type, "object": e.object}
            for e in history
            if e.resource_version > start and e.resource == info and selected(e.object)
        ]

    async def _stream(
        self,
        response: aiohttp.web.StreamResponse,
        queue: asyncio.Queue[WatchEvent | None],
        info: ResourceType,
        selected: Any,
        timeout: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.store.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(queue.get(), timeout=min(remaining, 5.0))
            except TimeoutError:
                continue
            if event is None:
                return
            if event.resource == info and selected(event.object):
                try:
                    await response.write(json.dumps({"type": event.type, "object": event.object}).encode() + b"\n")
                except (ConnectionResetError, RuntimeError):
                    return

    def _review(self, info: ResourceType, body: JSON) -> JSON:
        attrs_ = (
            body.get("spec", {}).get("resourceAttributes") or body.get("spec", {}).get("nonResourceAttributes") or {}
        )
        verb, resource = attrs_.get("verb", ""), attrs_.get("resource") or attrs_.get("path", "")
        denied = any((v in (verb, "*")) and (r in (resource, "*")) for v, r in self.denied)
        result = copy.deepcopy(body)
        result.setdefault("apiVersion", info.group_version)
        result.setdefault("kind", info.kind)
        result["status"] = {
            "allowed": not denied,
            **({"denied": True, "reason": "denied by the sandbox"} if denied else {"reason": "allowed by the sandbox"}),
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
        store = self.store
        existing = store.get(info, namespace, name)
        if content_type == "application/apply-patch+yaml":
            return self._apply(info, namespace, name, existing, body, raw)
        if existing is None:
            raise not_found(info, name)
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            new = json_patch(existing, body)
        elif content_type == "application/strategic-merge-patch+json":
            new = cast(JSON, strategic_merge(existing, body))
        elif content_type == "application/merge-patch+json":
            new = cast(JSON, merge_patch(existing, body))
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
        sent_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if sent_rv and sent_rv != existing["metadata"].get("resourceVersion"):
            raise conflict(info, name)
        new.setdefault("metadata", {})["resourceVersion"] = existing["metadata"].get("resourceVersion")
        if subresource != "status":
            _strict(store, raw, info, new)
            _track(info, existing, new, _manager(raw))
        return store.replace(info, existing, new, status_only=subresource == "status", check_rv=False), 200

    def _apply(
        self,
        info: ResourceType,
        namespace: str | None,
        name: str,
        existing: JSON | None,
        body: Any,
        raw: aiohttp.web.BaseRequest,
    ) -> tuple[JSON, int]:
        # Server-side apply: the manager's fields are exactly what it sends now; fields it sent
        # before and no longer does go, other managers' differing fields conflict unless forced.
        manager = raw.query.get("fieldManager")
        if not manager:
            raise ApiError(
                422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                "is required for apply patch"
            )
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "an apply patch must be an object")
        force = raw.query.get("force") in ("true", "1")
        _typed(self.store, info, namespace, name, body)
        if existing is None:
            body.setdefault("metadata", {})["name"] = name
            seed = {"apiVersion": info.group_version, "kind": info.kind, "metadata": {"name": name}}
            created = apply(info, seed, body, manager, force=force)
            return self.store.create(info, namespace, created, keep_status=False, keep_managed=True), 201
        new = apply(info, existing, body, manager, force=force)
        new["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
        return self.store.replace(info, existing, new, status_only=False, check_rv=False), 200

    async def _delete_collection(self, info: ResourceType, namespace: str | None, params: Mapping[str, str]) -> JSON:
        async with self.store.lock:
            listing = self._list(info, namespace, params)
            for obj in listing["items"]:
                existing = self.store.get(info, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                if existing is not None:
                    self.store.delete(info, existing, {})
            self.store.saved()
        return listing
