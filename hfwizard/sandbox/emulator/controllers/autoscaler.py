"""The HorizontalPodAutoscaler controller's part the rehearsal needs: keep a target's replicas within
[minReplicas, maxReplicas] (metrics are not emulated, so it never scales on load)."""

from __future__ import annotations

import copy
import datetime

from hfwizard.sandbox.emulator.api import JSON
from hfwizard.sandbox.emulator.store import Store

__all__ = ["HPA_VERSIONS", "reconcile_autoscalers"]

HPA_VERSIONS = ("autoscaling/v2", "autoscaling/v1")


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _reconcile(store: Store, api_version: str, hpa: JSON) -> None:
    meta, spec = hpa["metadata"], hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
    try:  # read in place: this pass runs on every workload event, and mostly changes nothing
        target = store.peek_object(ref.get("apiVersion", "apps/v1"), ref.get("kind", ""), meta.get("namespace"),
                                   ref.get("name", ""))
    except KeyError:
        target = None
    if target is None:
        condition = {"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
                     "message": f'the HPA controller was unable to get the target\'s current scale: '
                                f'{(ref.get("kind") or "").lower()}s "{ref.get("name")}" not found'}
        await store.patch_status(api_version, "HorizontalPodAutoscaler", meta.get("namespace"), meta["name"],
                                 {"conditions": [condition]})
        return
    current = int((target.get("spec") or {}).get("replicas") or 1)
    desired = min(max(current, low), high)
    if desired != current:
        scaled = copy.deepcopy(target)
        scaled["spec"]["replicas"] = desired
        await store.upsert(scaled, keep_status=True)
    reason = "TooFewReplicas" if current < low else "TooManyReplicas" if current > high else "DesiredWithinRange"
    condition = {"type": "ScalingLimited", "status": "True" if desired != current else "False", "reason": reason,
                 "lastTransitionTime": _now()}
    old = {c.get("type"): c for c in (hpa.get("status") or {}).get("conditions") or []}.get("ScalingLimited")
    if old and old.get("reason") == reason:
        condition["lastTransitionTime"] = old.get("lastTransitionTime")
    await store.patch_status(api_version, "HorizontalPodAutoscaler", meta.get("namespace"), meta["name"],
                             {"currentReplicas": current, "desiredReplicas": desired, "conditions": [condition]})


async def reconcile_autoscalers(store: Store, namespace: str | None) -> None:
    """Bring every autoscaled workload in `namespace` within its HPA's bounds."""
    for api_version in HPA_VERSIONS:
        for hpa in store.peek_objects(api_version, "HorizontalPodAutoscaler", namespace):  # read only
            await _reconcile(store, api_version, hpa)
