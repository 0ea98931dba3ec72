"""A scheduler that judges: node selectors, required node affinity, taints and resource requests.

It plays kube-scheduler's filter plugins in their order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit) and words an unschedulable pod's FailedScheduling message as the
real scheduler does, so an operator reading a rehearsal's events sees what a real cluster would say.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping

import attrs

from hfwizard.sandbox.emulator.api import JSON

__all__ = ["Placement", "eligible", "parse_quantity", "place", "pod_requests"]

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}
_UNRESOLVABLE = "Preemption is not helpful for scheduling"
_NO_VICTIMS = "No preemption victims found for incoming pod"
_NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity ("500m", "2", "1.5Gi", "129e6") as a number of base units."""
    text = str(value).strip()
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)", text)
    if not m or (m.group(2) and m.group(2) not in _SUFFIXES):
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return float(m.group(1)) * _SUFFIXES.get(m.group(2), 1)


def pod_requests(spec: JSON) -> dict[str, float]:
    """What a pod asks of a node: the sum of its containers' requests (a limit stands in for a
    missing request, as the API server defaults it), or its largest init container's if higher."""

    def of(container: JSON) -> dict[str, float]:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        return {name: parse_quantity(q) for name, q in merged.items()}

    total: dict[str, float] = collections.defaultdict(float)
    for container in spec.get("containers") or []:
        for name, amount in of(container).items():
            total[name] += amount
    for container in spec.get("initContainers") or []:
        for name, amount in of(container).items():
            total[name] = max(total[name], amount)
    total["pods"] = 1
    return dict(total)


@attrs.frozen
class Placement:
    """Where a pod goes: a node, or None and the FailedScheduling message."""

    node: str | None
    message: str = ""


def _ready(node: JSON) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _tolerated(taint: JSON, tolerations: Iterable[JSON]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _term_matches(term: JSON, node: JSON) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    checks = [(expr, labels) for expr in term.get("matchExpressions") or []]
    checks += [(expr, fields) for expr in term.get("matchFields") or []]
    if not checks:
        return False  # an empty term matches no node
    for expr, source in checks:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        have = source.get(key)
        if op == "In" and have not in values:
            return False
        if op == "NotIn" and have in values:
            return False
        if op == "Exists" and key not in source:
            return False
        if op == "DoesNotExist" and key in source:
            return False
        if op in ("Gt", "Lt"):
            try:
                ok = int(have or "") > int(values[0]) if op == "Gt" else int(have or "") < int(values[0])
            except (ValueError, IndexError):
                ok = False
            if not ok:
                return False
    return True


def _affinity_matches(spec: JSON, node: JSON) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {})
    terms = required.get("nodeSelectorTerms")
    return not terms or any(_term_matches(term, node) for term in terms)


def _filter(spec: JSON, node: JSON, used: Mapping[str, float], wants: Mapping[str, float]) -> list[tuple[str, bool]]:
    """Why `node` cannot take the pod: (reason, resolvable by preemption) pairs; empty when it fits."""
    if (node.get("spec") or {}).get("unschedulable"):
        return [("node(s) were unschedulable", False)]
    taints = list((node.get("spec") or {}).get("taints") or [])
    if not _ready(node):
        taints.append(_NOT_READY_TAINT)
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(taint, spec.get("tolerations") or []):
            return [(f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}", False)]
    if not _affinity_matches(spec, node):
        return [("node(s) didn't match Pod's node affinity/selector", False)]
    allocatable = {k: parse_quantity(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()}
    short = []
    for resource, amount in sorted(wants.items()):
        if amount and used.get(resource, 0) + amount > allocatable.get(resource, 0) + 1e-9:
            short.append(("Too many pods" if resource == "pods" else f"Insufficient {resource}", True))
    return short


def eligible(spec: JSON, node: JSON) -> bool:
    """Whether a pod may go to `node` at all, resources aside (a DaemonSet's choice of nodes)."""
    return not _filter(spec, node, {}, {})


def _message(total: int, reasons: collections.Counter[str], preemption: collections.Counter[str]) -> str:
    # kube-scheduler sorts the "<count> <reason>" strings themselves (FitError.Error).
    found = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))
    after = ", ".join(sorted(f"{count} {reason}" for reason, count in preemption.items()))
    return f"0/{total} nodes are available: {found}. preemption: 0/{total} nodes are available: {after}."


def place(spec: JSON, nodes: list[JSON], usage: Mapping[str, Mapping[str, float]]) -> Placement:
    """Choose a node for a pod with `spec`, given each node's requested resources so far (`usage`)."""
    if not nodes:
        return Placement(None, "no nodes available to schedule pods")
    wants = pod_requests(spec)
    reasons: collections.Counter[str] = collections.Counter()
    preemption: collections.Counter[str] = collections.Counter()
    fitting: list[tuple[float, str]] = []
    for node in nodes:
        name = node["metadata"]["name"]
        used = usage.get(name, {})
        why = _filter(spec, node, used, wants)
        if not why:
            cpu = parse_quantity(((node.get("status") or {}).get("allocatable") or {}).get("cpu", "1")) or 1
            fitting.append((used.get("cpu", 0) / cpu, name))  # least allocated first, as the default scorer
            continue
        for reason, _ in why:
            reasons[reason] += 1
        preemption[_NO_VICTIMS if all(resolvable for _, resolvable in why) else _UNRESOLVABLE] += 1
    if fitting:
        return Placement(min(fitting)[1])
    return Placement(None, _message(len(nodes), reasons, preemption))
