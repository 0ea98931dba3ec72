"""The API server's patch types: JSON merge patch, strategic merge patch and JSON patch."""

from __future__ import annotations

import copy
from typing import Any, cast

from hfwizard.sandbox.emulator.api import JSON, ApiError

__all__ = ["json_patch", "merge_patch", "strategic_merge"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
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
                merged[name] = strategic_merge(merged.get(name), item)
            result[key] = [merged[n] for n in order if n in merged]
        else:
            merged_value = strategic_merge(result.get(key), value)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def json_patch(target: JSON, ops: list[JSON]) -> JSON:
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

