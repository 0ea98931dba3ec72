"""What the platform asks of each node group: CPU and memory requests at the lowest replica counts.

Preflight compares these with the allocatable capacity of the nodes carrying each group's label (the GPU
group exists only for the guardrail models); the sizing screen shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hfwizard.platform.catalog import Catalog
from hfwizard.platform.values import ServiceRelease, service_releases
from hfwizard.profile import InstallProfile

_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
_MEM = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9,
          "T": 10**12}


@dataclass(frozen=True)
class GroupRequests:
    """Requests of every pod that selects one node group."""

    label: str
    """`<node label>=<value>` the pods select, e.g. kube/nodegroup=gpu."""
    cpu_millis: int
    memory_bytes: int
    pods: int
    largest_cpu_millis: int
    """The largest single pod: a node smaller than this can never run it."""
    largest_memory_bytes: int


def cpu_millis(quantity: str) -> int:
    m = _CPU.match(str(quantity))
    if not m:
        raise ValueError(f"{quantity!r} is not a CPU quantity")
    return round(float(m.group(1)) * (1 if m.group(2) else 1000))


def memory_bytes(quantity: str) -> int:
    m = _MEM.match(str(quantity))
    if not m:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    return round(float(m.group(1)) * _UNITS[m.group(2)])


def node_group_requests(profile: InstallProfile, catalog: Catalog | None = None) -> list[GroupRequests]:
    """Per node group the services select, the sum of their pods' requests at minimum scale."""
    totals: dict[str, list[int]] = {}
    for release in service_releases(profile, catalog):
        for pod_count, selector, requests in _workloads(release):
            if not selector or pod_count <= 0:
                continue
            label = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            cpu, mem = cpu_millis(requests.get("cpu", "0")), memory_bytes(requests.get("memory", "0"))
            t = totals.setdefault(label, [0, 0, 0, 0, 0])
            t[0] += cpu * pod_count
            t[1] += mem * pod_count
            t[2] += pod_count
            t[3] = max(t[3], cpu)
            t[4] = max(t[4], mem)
    return [GroupRequests(label, *t) for label, t in sorted(totals.items())]


def _workloads(release: ServiceRelease) -> list[tuple[int, dict[str, str], dict[str, str]]]:
    """(pods, nodeSelector, requests) of the release's main Deployment and any worker Deployments."""
    v = release.values
    if "resources" not in v:
        return []  # GKE's shared ingress runs no pods
    out = [(_replicas(v), v.get("nodeSelector") or {}, v["resources"].get("requests") or {})]
    for part in ("worker", "palisadeWorker"):
        w = v.get(part)
        if isinstance(w, dict) and w.get("enabled", True) and w.get("resources"):
            out.append((_replicas(w), w.get("nodeSelector") or {}, w["resources"].get("requests") or {}))
    return out


def _replicas(v: dict[str, Any]) -> int:
    auto = v.get("autoscaling") or {}
    return int(auto.get("minReplicas", 1)) if auto.get("enabled") else int(v.get("replicaCount", 1))
