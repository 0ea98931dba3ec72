"""Field validation as the API server does it: unknown fields refused (`fieldValidation=Strict`, and
always for server-side apply) for built-in kinds, from Kubernetes' own schemas, and for custom kinds
from their CRD's openAPIV3Schema.

The built-in schemas come from the pinned PyPI package kubernetes-validate (its strict JSON schema
definitions for v1.32, read as data; its validator is not used).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable
from typing import Any

from hfwizard.sandbox.emulator.api import JSON, ResourceType

__all__ = ["crd_schema", "unknown_fields"]

_SCHEMAS = "kubernetes-json-schema/v1.32.0-local-strict/_definitions.json"
_Resolve = Callable[[JSON], JSON]


@functools.cache
def _definitions() -> dict[str, JSON]:
    data = importlib.resources.files("kubernetes_validate").joinpath(_SCHEMAS).read_bytes()
    return dict(json.loads(data)["$defs"])


@functools.cache
def _by_kind() -> dict[tuple[str, str, str], str]:
    index = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            index[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name
    return index


def _resolve_builtin(schema: JSON) -> JSON:
    while "$ref" in schema or ("allOf" in schema and len(schema["allOf"]) == 1):
        ref = schema["$ref"] if "$ref" in schema else schema["allOf"][0].get("$ref", "")
        schema = _definitions().get(ref.rsplit("/", 1)[-1], {})
    return schema


def _walk(
    value: Any, schema: JSON, resolve: _Resolve, path: str, found: list[str], keyed: bool = False, prune: bool = False
) -> None:
    schema = resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in list(value.items()):
            where = f"{path}.{key}" if path else key
            if props is not None and key in props:
                _walk(item, props[key], resolve, where, found, keyed, prune)
            elif isinstance(extra, dict):
                _walk(item, extra, resolve, where, found, keyed, prune)
            elif props is not None and extra is not True:
                found.append(where)
                if prune:
                    del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            # Server-side apply names items of keyed lists by key ([name="web"]), the decoder by index.
            step = f'[name="{item["name"]}"]' if keyed and isinstance(item, dict) and "name" in item else f"[{index}]"
            _walk(item, schema["items"], resolve, f"{path}{step}", found, keyed, prune)


def crd_schema(crd: JSON, version: str) -> JSON | None:
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return ((entry.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


def unknown_fields(
    info: ResourceType, obj: JSON, crd: JSON | None = None, *, keyed: bool = False, prune: bool = False
) -> list[str]:
    """The dotted paths of fields `obj` has that its kind's schema does not declare ([] if unknown kind);
    with `prune` they are also removed from `obj`, as the decoder drops them without Strict."""
    found: list[str] = []
    if crd is not None:
        schema = crd_schema(crd, info.version)
        # apiVersion, kind and metadata are the API server's, not the CRD's to declare.
        own = ("apiVersion", "kind", "metadata", "status")
        body = {k: v for k, v in obj.items() if k not in own}
        if schema is not None:
            _walk(body, schema, lambda s: s, "", found, keyed, prune)
    else:
        body = {k: v for k, v in obj.items() if k != "status"}
        name = _by_kind().get((info.group, info.version, info.kind))
        if name is not None:
            _walk(body, _definitions()[name], _resolve_builtin, "", found, keyed, prune)
    if prune:
        for path in found:
            if "." not in path and "[" not in path:
                obj.pop(path, None)  # a top-level field: the walk removed it from the copy only
    return found
