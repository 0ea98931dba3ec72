"""Preflight `kubernetes/node-groups`: every node group the services select exists and can hold their requests.

The catalog's services select nodes by a label (sizing.nodeGroups.label, `kube/nodegroup` on Highflame's
clusters): the general group always, the GPU group while the guardrails module is on. A group without a
single Ready, schedulable node leaves its pods Pending forever (FailedScheduling: "didn't match Pod's node
affinity/selector"); a group whose allocatable capacity is below the sum of its pods' requests leaves some
of them Pending ("Insufficient cpu"). Both are found here, before anything is installed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hfwizard.checks.base import CheckResult, Status, result
from hfwizard.checks.kubernetes import GIB, KubeSession, node_view
from hfwizard.checks.threads import in_thread
from hfwizard.profile import InstallProfile

NEAR_FULL = Decimal("0.85")  # above this share of allocatable, daemons and rollouts may not fit


def _labels(node: Any) -> dict[str, str]:
    return dict(node.metadata.labels or {})


def _selector(label: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in label.split(",") if "=" in pair)


def _cores(millis: int | Decimal) -> str:
    return f"{Decimal(millis) / 1000:.1f}".rstrip("0").rstrip(".")


def _gib(value: int | Decimal) -> str:
    return f"{Decimal(value) / GIB:.1f}"


def _missing_remedy(profile: InstallProfile, label: str) -> str:
    groups = profile.sizing.node_groups
    if label == f"{groups.label}={groups.gpu}":
        return (f"add a GPU node group labelled {label}, or turn off the guardrails module "
                "(modules.guardrails.enabled: false)")
    return (f"label the worker nodes {label} (kubectl label nodes NODE {label}; on EKS/GKE/AKS set it on the "
            "node group), or set sizing.nodeGroups.label and sizing.nodeGroups.general to the label they carry")


def _requests(profile: InstallProfile) -> Any:
    from hfwizard.platform.sizing import node_group_requests

    return node_group_requests(profile)


async def check_node_groups(s: KubeSession, profile: InstallProfile, cid: str, title: str,
                            started: float) -> CheckResult:
    from hfwizard.errors import HfwizardError

    if not profile.ingress.domain:
        # The hosts are made from the domain, the node groups and requests never: plan with a stand-in so
        # this check still answers while platform/inputs names the missing domain.
        profile = profile.model_copy(update={"ingress": profile.ingress.model_copy(
            update={"domain": "node-groups.invalid"})})
    try:
        # In a thread: planning every service's values (and importing and parsing the catalog) would hold
        # the event loop for 0.1-0.3 s, and every check after this one would start that much later.
        groups = await in_thread(_requests, profile)
    except HfwizardError as exc:
        return result(cid, title, Status.SKIPPED, f"not checked: the services cannot be planned yet ({exc.message})",
                      None, started)
    if not groups:
        return result(cid, title, Status.PASS, "no service selects a node group", None, started)
    nodes = await s.nodes()
    failures: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    fine: list[str] = []
    for g in groups:
        want = _selector(g.label)
        members = [n for n in nodes if all(_labels(n).get(k) == v for k, v in want.items())]
        usable = [v for v in (node_view(n) for n in members) if v.ready and v.schedulable and not v.control_plane]
        if not usable:
            seen = f" ({len(members)} labelled, none Ready and schedulable)" if members else ""
            failures.append((f"no node is labelled {g.label}{seen}; {g.pods} pod(s) select it",
                             _missing_remedy(profile, g.label)))
            continue
        cpu = sum((v.cpu_allocatable or Decimal(0)) * 1000 for v in usable)
        mem = sum(v.mem_allocatable or Decimal(0) for v in usable)
        big_cpu = max((v.cpu_allocatable or Decimal(0)) * 1000 for v in usable)
        big_mem = max(v.mem_allocatable or Decimal(0) for v in usable)
        shown = (f"{g.label}: {len(usable)} node(s), {_cores(cpu)} cores / {_gib(mem)} GiB allocatable for "
                 f"requests of {_cores(g.cpu_millis)} cores / {_gib(g.memory_bytes)} GiB ({g.pods} pods)")
        more = f"add nodes to the {g.label} group, or choose a smaller sizing preset (sizing.preset)"
        if g.largest_cpu_millis > big_cpu or g.largest_memory_bytes > big_mem:
            failures.append((f"{shown}; one pod requests {_cores(g.largest_cpu_millis)} cores / "
                             f"{_gib(g.largest_memory_bytes)} GiB, more than any node offers",
                             f"use larger nodes in the {g.label} group"))
        elif g.cpu_millis > cpu or g.memory_bytes > mem:
            failures.append((f"{shown}: the requests do not fit", more))
        elif g.cpu_millis > cpu * NEAR_FULL or g.memory_bytes > mem * NEAR_FULL:
            warnings.append((f"{shown}: above {NEAR_FULL:.0%} of allocatable", more))
        else:
            fine.append(shown)
    if failures:
        return result(cid, title, Status.FAIL, "; ".join(f for f, _ in failures),
                      "; ".join(dict.fromkeys(r for _, r in failures)), started)
    if warnings:
        return result(cid, title, Status.WARN, "; ".join(f for f, _ in warnings + [(x, "") for x in fine]),
                      "; ".join(dict.fromkeys(r for _, r in warnings)), started)
    return result(cid, title, Status.PASS, "; ".join(fine), None, started)
