"""The objects step: apply objects server-side under hfwizard's field manager, then wait as each asks.

    apply (PATCH application/apply-patch+yaml, fieldManager hfwizard) -> journal uid/resourceVersion/hash
    wait: installation -> the operator's status (Completed, every host), stalls named with their status
          job          -> the Job's Complete condition (Failed ends the step)
          none         -> present is enough (a CronJob, a ServiceAccount, a Secret)

On resume `still_done` reads each object again: the same uid, the same hash of what the profile asks
for now, nothing changed under us, and still ready; anything else is listed and the step runs again.
Each object's record says what `hfwizard uninstall` does with it (`on_uninstall`) and what it leaves.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from hfwizard.engine.context import StepContext, StepError, StepResult, api_reason
from hfwizard.engine.kube import FIELD_MANAGER
from hfwizard.engine.plan import Step, StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.engine.steps.release import values_hash
from hfwizard.platform import clickhouse as ch
from hfwizard.platform.clickhouse import AppliedObject
from hfwizard.store.journal import StepState

JSON = dict[str, Any]

# Short names for messages, as kubectl spells them (`chi/ch`, `job/clickhouse-setup`).
SHORT = {"ClickHouseInstallation": "chi", "ClickHouseKeeperInstallation": "chk", "Job": "job",
         "CronJob": "cronjob", "ServiceAccount": "serviceaccount", "Secret": "secret"}
# Pods of an installation, by the label the operator puts on them.
POD_LABEL = {"ClickHouseInstallation": "clickhouse.altinity.com/chi",
             "ClickHouseKeeperInstallation": "clickhouse-keeper.altinity.com/chk"}


def ref(obj: JSON) -> str:
    return f"{SHORT.get(obj['kind'], obj['kind'].lower())}/{obj['metadata']['name']}"


def uninstall_plan(step: Step) -> list[JSON]:
    """What `hfwizard uninstall` does with what this step applied: each object removed or kept, and
    the data the operator made from it that stays (volume claims with reclaimPolicy Retain)."""
    out: list[JSON] = []
    for applied in step.objects:
        obj = applied.obj
        out.append({"object": ref(obj), "namespace": obj["metadata"]["namespace"],
                    "action": applied.on_uninstall, "why": applied.why})
        for claim in ((obj.get("spec") or {}).get("templates") or {}).get("volumeClaimTemplates") or []:
            out.append({"object": f"persistentvolumeclaims {claim['name']}-* of {ref(obj)}",
                        "namespace": obj["metadata"]["namespace"], "action": "keep",
                        "why": f"the data (reclaimPolicy {claim.get('reclaimPolicy', 'Delete')})"})
    return out


@register(StepKind.OBJECTS)
class ObjectsStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        applied: list[JSON] = []
        for index, item in enumerate(ctx.step.objects):
            applied.append(await _apply(ctx, item.obj))
            if index == 0:
                ctx.kill_point("mid")
        ctx.kill_point("applied-objects")
        for item, record in zip(ctx.step.objects, applied, strict=True):
            if item.wait == "installation":
                await _wait_installation(ctx, item.obj)
            elif item.wait == "job":
                await _wait_job(ctx, item.obj)
            live = await asyncio.to_thread(_read, ctx, item.obj)
            record["resourceVersion"] = (live or {}).get("metadata", {}).get("resourceVersion")
        names = ", ".join(r["object"] for r in applied)
        return StepResult(f"applied {names}", {"objects": applied, "uninstall": uninstall_plan(ctx.step)})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        recorded = {r.get("object"): r for r in record.record.get("objects") or []}
        for item in ctx.step.objects:
            obj = item.obj
            name = ref(obj)
            live = await asyncio.to_thread(_read, ctx, obj)
            seen = recorded.get(name)
            if live is None:
                return False, f"{name} is gone"
            if seen is None:
                return False, f"{name} is not in the journal's record of this step"
            if seen.get("uid") != live["metadata"].get("uid"):
                return False, f"{name} is not the object this install applied (its uid changed)"
            diff = ch.changes(live, obj)
            if seen.get("hash") != object_hash(obj) or diff:
                return False, f"{name} changes: " + ("; ".join(diff) or "the applied object differs")
            problem = _not_ready(item, live)
            if problem:
                return False, problem
        return True, f"{len(ctx.step.objects)} objects as applied ({', '.join(recorded)})"


def object_hash(obj: JSON) -> str:
    return values_hash(obj)


def _read(ctx: StepContext, obj: JSON) -> JSON | None:
    meta = obj["metadata"]
    return ctx.kube.read_object(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])


async def _apply(ctx: StepContext, obj: JSON) -> JSON:
    """Apply one object (logging what changes first) and return its journal record."""
    name, kube = ref(obj), ctx.kube
    live = await asyncio.to_thread(_read, ctx, obj)
    diff = ch.changes(live, obj)
    if live is not None:
        for line in diff:
            ctx.log(f"{name}: {line}")
    ctx.note(action="apply", object=name, hash=object_hash(obj), existed=live is not None)
    if live is not None and obj["kind"] == "Job" and _job_state(live)[0] == "Failed":
        # A failed one-off Job would stay failed when applied again unchanged: run it afresh.
        ctx.log(f"{name} failed in an earlier run ({_job_state(live)[1]}); running it again", level="warning")
        await ctx.fence()
        await asyncio.to_thread(kube.delete_object, obj["apiVersion"], obj["kind"],
                                obj["metadata"]["namespace"], obj["metadata"]["name"])
        result = await _apply_when_gone(ctx, obj)
        return _record(obj, result)
    await ctx.fence()
    try:
        result = await asyncio.to_thread(kube.apply_object, obj, force=False)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status == 409 and live is not None and _ours(live):
            # Fields we applied before, changed since by another manager: ours to set back.
            ctx.log(f"{name}: taking back fields another manager changed ({api_reason(exc)})", level="warning")
            await ctx.fence()
            result = await asyncio.to_thread(kube.apply_object, obj, force=True)
        elif status == 422 and obj["kind"] == "Job" and live is not None:
            # A Job's pod template cannot change; a changed one-off Job is replaced.
            ctx.log(f"{name}: its template changed; replacing the Job", level="warning")
            await ctx.fence()
            await asyncio.to_thread(kube.delete_object, obj["apiVersion"], obj["kind"],
                                    obj["metadata"]["namespace"], obj["metadata"]["name"])
            result = await _apply_when_gone(ctx, obj)
        elif status == 409:
            raise StepError(f"{name} exists with fields another manager owns: {api_reason(exc)}",
                            remedy=f"remove {name} or let hfwizard manage it (its field manager is "
                                   f"{FIELD_MANAGER!r}), then resume") from None
        else:
            raise StepError(f"applying {name} failed: {api_reason(exc)}",
                            remedy="fix the cause named above and run `hfwizard resume`") from None
    ctx.log(f"{name}: {'configured' if diff and live is not None else 'unchanged' if live else 'created'}")
    return _record(obj, result)


def _record(obj: JSON, result: JSON) -> JSON:
    meta = result.get("metadata") or {}
    return {"object": ref(obj), "kind": obj["kind"], "apiVersion": obj["apiVersion"],
            "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
            "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"), "hash": object_hash(obj)}


async def _apply_when_gone(ctx: StepContext, obj: JSON) -> JSON:
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(_read, ctx, obj) is not None:
        if time.monotonic() > deadline:
            raise StepError(f"{ref(obj)} was deleted but is still there after 60s")
        await asyncio.sleep(ctx.run.poll_interval)
    await ctx.fence()
    return await asyncio.to_thread(ctx.kube.apply_object, obj, force=False)


def _ours(live: JSON) -> bool:
    return any(m.get("manager") == FIELD_MANAGER for m in live["metadata"].get("managedFields") or [])


def _not_ready(item: AppliedObject, live: JSON) -> str | None:
    if item.wait == "installation":
        ready, summary = ch.readiness(live)
        return None if ready else f"{ref(item.obj)} is not Completed: {summary}"
    if item.wait == "job" and _job_state(live)[0] != "Complete":
        return f"{ref(item.obj)} has not completed: {_job_state(live)[1]}"
    return None


async def _wait_installation(ctx: StepContext, obj: JSON) -> None:
    """Wait on the operator's own status; fail on Aborted, a stall or the install's deadline, naming
    the installation and quoting its status."""
    name, watch = ref(obj), ch.InstallationWatch(ctx.profile.install.stall_seconds)
    last = ""
    while True:
        live = await asyncio.to_thread(_read, ctx, obj)
        if live is None:
            raise StepError(f"{name} disappeared while waiting for it",
                            remedy="run `hfwizard resume` to apply it again")
        progress = watch.observe(live, time.monotonic())
        if progress.summary != last:
            last = progress.summary
            status = live.get("status") or {}
            ctx.progress(int(status.get("hostsCompleted") or 0), ch.expected_hosts(live), progress.summary)
        if progress.ready:
            return
        failure = progress.failure or (None if ctx.remaining() > 0 else f"out of time: {progress.summary}")
        if failure:
            raise StepError(f"{name} is stuck: {failure}",
                            remedy=f"look at the operator's log and `kubectl describe {name} -n "
                                   f"{obj['metadata']['namespace']}`; `hfwizard resume` waits again",
                            pod_events=tuple(await _pod_events(ctx, obj)))
        await asyncio.sleep(ctx.run.poll_interval)


async def _pod_events(ctx: StepContext, obj: JSON) -> list[str]:
    label = POD_LABEL.get(obj["kind"])
    if label is None and obj["kind"] == "Job":
        label = "job-name"
    if label is None:
        return []
    ns = obj["metadata"]["namespace"]
    try:
        pods = await asyncio.to_thread(ctx.kube.pods, ns, f"{label}={obj['metadata']['name']}")
        return await asyncio.to_thread(ctx.kube.pod_problems, ns, pods)
    except Exception:
        return []  # the events only explain a failure already reported


def _job_state(job: JSON) -> tuple[str, str]:
    """("Complete" | "Failed" | "Running", what its status says)."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            return cond["type"], why or cond["type"]
    counts = {k: int(status.get(k) or 0) for k in ("active", "succeeded", "failed")}
    return "Running", json.dumps(counts)


async def _wait_job(ctx: StepContext, obj: JSON) -> None:
    name, stall = ref(obj), ctx.profile.install.stall_seconds
    last, since = "", time.monotonic()
    while True:
        live = await asyncio.to_thread(_read, ctx, obj)
        if live is None:
            raise StepError(f"{name} disappeared while waiting for it",
                            remedy="run `hfwizard resume` to apply it again")
        state, summary = _job_state(live)
        if state == "Complete":
            return
        if state == "Failed":
            raise StepError(f"{name} failed: {summary}", remedy=f"read its pods' logs (`kubectl logs {name} -n "
                            f"{obj['metadata']['namespace']}`); `hfwizard resume` runs it again",
                            pod_events=tuple(await _pod_events(ctx, obj)))
        if summary != last:
            last, since = summary, time.monotonic()
            ctx.progress(0, 1, f"{name}: {summary}")
        elif time.monotonic() - since > stall or ctx.remaining() <= 0:
            raise StepError(f"{name} is stuck: no progress for {stall}s (install.stallSeconds): {summary}",
                            remedy="`hfwizard resume` waits again", pod_events=tuple(await _pod_events(ctx, obj)))
        await asyncio.sleep(ctx.run.poll_interval)


__all__ = ["ObjectsStep", "object_hash", "ref", "uninstall_plan"]
