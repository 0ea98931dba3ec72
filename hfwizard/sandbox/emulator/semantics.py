"""Per-kind rules the API server applies on write: defaults, and status it sets itself."""

from __future__ import annotations

import base64
from collections.abc import Collection

from hfwizard.sandbox.emulator.api import JSON, ResourceType, now
from hfwizard.sandbox.emulator.defaults import default_object, load_balancer_status

__all__ = ["fold_string_data", "on_create", "on_update"]


def on_create(
    info: ResourceType, obj: JSON, revision: int, *, cloud: str = "generic", node_ports: Collection[int] = ()
) -> None:
    """Fill in what the API server (and, for Services, the cloud's controllers) add to a new object."""
    core = not info.group
    default_object(info, obj, node_ports)
    _load_balancer(info, obj, cloud)
    if info.kind == "Secret" and core:
        fold_string_data(obj)
    elif info.kind == "Namespace" and core:
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif info.kind == "Service" and core:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            spec["clusterIP"] = f"10.96.{revision % 250}.{(revision // 250) % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
    elif info.kind == "CustomResourceDefinition":
        obj["status"] = _crd_status(obj)
    elif info.kind == "PersistentVolumeClaim" and core:
        obj["status"] = {
            "phase": "Bound",
            "accessModes": obj.get("spec", {}).get("accessModes", []),
            "capacity": obj.get("spec", {}).get("resources", {}).get("requests", {}),
        }


def on_update(
    info: ResourceType, obj: JSON, existing: JSON, *, cloud: str = "generic", node_ports: Collection[int] = ()
) -> None:
    """Rules for a replaced object (`existing` is the stored version before the write)."""
    default_object(info, obj, node_ports)
    _load_balancer(info, obj, cloud)
    if info.kind == "Secret" and not info.group:
        fold_string_data(obj)


def _load_balancer(info: ResourceType, obj: JSON, cloud: str) -> None:
    if info.group or info.kind != "Service":
        return
    status = obj.setdefault("status", {})
    if (obj.get("spec") or {}).get("type") == "LoadBalancer":
        if not (status.get("loadBalancer") or {}).get("ingress"):
            status["loadBalancer"] = load_balancer_status(obj, cloud)
    else:
        status["loadBalancer"] = {}


def fold_string_data(secret: JSON) -> None:
    """`stringData` is write-only: its keys go base64-encoded into `data` (winning over `data`'s own),
    and it is never stored, returned or written to the state file, as on a real API server."""
    plain = secret.pop("stringData", None)
    if not plain:
        return
    data = secret.get("data") or {}
    for key, value in plain.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = data


def _crd_status(crd: JSON) -> JSON:
    spec = crd.get("spec", {})
    return {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now()},
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "lastTransitionTime": now(),
            },
        ],
        "acceptedNames": spec.get("names", {}),
        "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
    }
