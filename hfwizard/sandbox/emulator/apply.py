"""Server-side apply: field ownership per manager (metadata.managedFields), conflicts, and removal of
fields a manager stops applying.

Field paths follow the API server's FieldsV1 keys: `f:<field>` for map fields and `k:{"name":...}`
for items of lists keyed by name (containers, env, ports, volumes...); any other list is atomic and
owned whole. Status and the server's own metadata are never owned here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hfwizard.sandbox.emulator.api import JSON, ApiError, ResourceType, now

__all__ = ["apply", "record_update"]

Path = tuple[str, ...]
_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
              "managedFields", "deletionTimestamp", "selfLink", "generateName"}  # fmt: skip


def _keyed(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _item_key(item: JSON) -> str:
    return "k:" + json.dumps({"name": item["name"]}, separators=(",", ":"))


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every owned leaf of an object: path -> value (maps and keyed lists are walked into)."""
    out: dict[Path, Any] = {}
    if isinstance(obj, dict) and (obj or not prefix):
        for key, value in obj.items():
            if not prefix and key in ("apiVersion", "kind", "status"):
                continue
            if prefix == ("f:metadata",) and key in _SKIP_META:
                continue
            out.update(leaves(value, (*prefix, f"f:{key}")))
    elif _keyed(obj):
        for item in obj:
            out[(*prefix, _item_key(item))] = None  # the item itself: removing it removes the element
            out.update(leaves({k: v for k, v in item.items() if k != "name"}, (*prefix, _item_key(item))))
    else:
        out[prefix] = obj
    return out


def _to_fields(paths: set[Path]) -> JSON:
    tree: JSON = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
        if path and path[-1].startswith("k:"):
            node["."] = {}
    return tree


def _from_fields(tree: JSON, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            paths.add(prefix)
            continue
        if sub and set(sub) != {"."}:
            paths |= _from_fields(sub, (*prefix, key))
        else:
            paths.add((*prefix, key))
    return paths


def _owners(obj: JSON) -> dict[tuple[str, str], set[Path]]:
    owners = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        owners[(entry.get("manager", ""), entry.get("operation", "Update"))] = _from_fields(entry.get("fieldsV1") or {})
    return owners


def _store_owners(obj: JSON, owners: dict[tuple[str, str], set[Path]], api_version: str, before: JSON | None) -> None:
    # An entry whose fields did not change keeps its time: a no-op write must stay a no-op.
    previous = {(e.get("manager"), e.get("operation")): e for e in (before or {}).get("metadata", {}).get(
        "managedFields"
    ) or []}
    entries = []
    for (manager, operation), paths in sorted(owners.items()):
        if not paths:
            continue
        fields = _to_fields(paths)
        old = previous.get((manager, operation)) or {}
        stamp = old.get("time") if old.get("fieldsV1") == fields else now()
        entries.append({"manager": manager, "operation": operation, "apiVersion": api_version, "time": stamp,
                        "fieldsType": "FieldsV1", "fieldsV1": fields})
    obj["metadata"]["managedFields"] = entries


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for step in path:
        if step.startswith("f:") and isinstance(node, dict) and step[2:] in node:
            node = node[step[2:]]
        elif step.startswith("k:") and isinstance(node, list):
            name = json.loads(step[2:])["name"]
            match = [i for i in node if isinstance(i, dict) and i.get("name") == name]
            if not match:
                return False, None
            node = match[0]
        else:
            return False, None
    return True, node


def _remove(obj: JSON, path: Path) -> None:
    parents: list[tuple[Any, str]] = []
    node: Any = obj
    for step in path:
        parents.append((node, step))
        found, node = _get(node, (step,))
        if not found:
            return
    for parent, step in reversed(parents):
        if step.startswith("f:"):
            parent.pop(step[2:], None)
        else:
            name = json.loads(step[2:])["name"]
            parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get("name") == name)]
        if parent:  # stop pruning once a parent still holds something
            break


def _merge(live: Any, applied: Any) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = _merge(live.get(key), value)
        return out
    if _keyed(applied) and isinstance(live, list):
        by_name = {i.get("name"): i for i in live if isinstance(i, dict)}
        merged = [_merge(by_name.get(item["name"]), item) for item in applied]
        applied_names = {item["name"] for item in applied}
        return merged + [i for i in live if isinstance(i, dict) and i.get("name") not in applied_names]
    return copy.deepcopy(applied)


def _conflict_error(info: ResourceType, conflicts: list[tuple[str, Path]]) -> ApiError:
    def dotted(path: Path) -> str:
        return "".join(f".{s[2:]}" if s.startswith("f:") else f"[name={json.loads(s[2:])['name']}]" for s in path)

    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = f'Apply failed with 1 conflict: conflict with "{manager}" using {info.group_version}: {dotted(path)}'
    else:
        lines = "\n".join(f'- conflict with "{m}" using {info.group_version}: {dotted(p)}' for m, p in conflicts)
        message = f"Apply failed with {len(conflicts)} conflicts:\n{lines}"
    return ApiError(409, "Conflict", message, {"kind": info.plural, "group": info.group})


def apply(info: ResourceType, live: JSON, config: JSON, manager: str, *, force: bool) -> JSON:
    """The object after `manager` applies `config` to `live` (both full objects)."""
    owners = _owners(live)
    mine = owners.pop((manager, "Apply"), set())
    wanted = leaves(config)
    live_leaves = leaves(live)
    conflicts = [
        (other, path)
        for (other, _), paths in sorted(owners.items())
        for path in sorted(paths & wanted.keys())
        if other != manager and live_leaves.get(path) != wanted[path] and not path[-1].startswith("k:")
    ]
    if conflicts and not force:
        raise _conflict_error(info, conflicts)
    taken = set(wanted)
    for key in owners:
        owners[key] = owners[key] - taken if force or key[0] == manager else owners[key]
    result = copy.deepcopy(live)
    still_owned = set().union(*owners.values()) if owners else set()
    for path in sorted(mine - taken - still_owned, key=len, reverse=True):
        _remove(result, path)
    body = {k: v for k, v in config.items() if k not in ("status",)}
    body["metadata"] = {k: v for k, v in (config.get("metadata") or {}).items() if k not in _SKIP_META}
    result = _merge(result, body)
    owners[(manager, "Apply")] = taken
    _store_owners(result, owners, info.group_version, live)
    return result


def record_update(info: ResourceType, old: JSON | None, new: JSON, manager: str) -> None:
    """A non-apply write: `manager` takes over the fields it added or changed (an "Update" entry)."""
    owners = _owners(old) if old is not None else {}
    before = leaves(old) if old is not None else {}
    changed = {path for path, value in leaves(new).items() if before.get(path, object()) != value}
    if not changed and not owners:
        new.setdefault("metadata", {}).pop("managedFields", None)
        return
    for key in owners:
        owners[key] -= changed
    owners[(manager, "Update")] = owners.get((manager, "Update"), set()) | changed
    present = set(leaves(new))
    owners = {key: paths & present for key, paths in owners.items()}
    _store_owners(new, owners, info.group_version, old)
