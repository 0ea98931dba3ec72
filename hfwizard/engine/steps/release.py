"""The release step: install or upgrade one Helm release and wait, following what its manifest created.

While Helm waits, progress is the ready replicas of the Deployments, StatefulSets, DaemonSets and Jobs
the release's own manifest lists (read from Helm's release record), never names or labels guessed
from the release name. A stall (nothing advances for install.stallSeconds) or the install's deadline
ends Helm's call; with rollback-on-failure the release goes back to where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from typing import Any

from hfwizard.engine import diagnose
from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.helm import PENDING_STATUSES, ChartRef, HelmError, ReleaseInfo, ReleaseNotFound
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.engine.steps.charts import cached_charts
from hfwizard.engine.steps.secrets import content_hash, decoded
from hfwizard.engine.workloads import (
    ManifestObject,
    Workload,
    pod_events,
    progress_text,
    release_objects,
    workload_states,
)
from hfwizard.platform.values import ServiceRelease
from hfwizard.store.journal import StepState

ENV_CHECKSUM = "hfwizard.io/env-checksum"
DIAGNOSE_AFTER = 3.0  # seconds a release may wait before its pods are explained
DIAGNOSE_EVERY = 2.0  # how often a waiting release's pods are looked at again
PROGRESS_MAX_AGE = 0.25  # releases in flight share a workload list this fresh (progress only)


@register(StepKind.RELEASE)
class ReleaseStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        spec = ctx.step.release
        assert spec is not None
        name, ns, helm = spec.release, ctx.namespace, ctx.helm
        chart = await asyncio.to_thread(cached_charts(ctx.run.cache_dir).fetch, spec.chart, spec.version)
        values = await release_values(ctx, spec)
        vhash = values_hash(values)
        current = await release_record(ctx, name)
        if current is not None and current[1] in PENDING_STATUSES:
            ctx.log(f"release {name} was left {current[1]} at revision {current[0]} "
                    "by an interrupted run: recovering it first", level="warning")
            await ctx.fence()
            await helm.recover_pending(name, ns)
            current = await release_record(ctx, name)
        adopted = _adoptable(ctx, name, current, vhash)
        if adopted is not None:
            return adopted
        base = current[0] if current is not None else 0
        # Noted before Helm is called: if we die while it works, resume can tell its revision from ours.
        ctx.note(action="helm", release=name, base_revision=base, values_hash=vhash)
        progress_seen = [time.monotonic()]

        def on_log(line: str) -> None:
            progress_seen[0] = time.monotonic()
            ctx.log(line, level=helm_level(line), source="helm")

        await ctx.fence()
        call = asyncio.create_task(helm.install_or_upgrade(
            name, ChartRef(str(chart.path)), ns, values, version=None, wait=True,
            timeout_s=max(1.0, ctx.remaining()), on_log=on_log))
        try:
            info = await _watch(ctx, name, call, progress_seen)
        except (HelmError, StepError) as exc:
            causes = [d.line for d in await diagnosis(ctx, name)]  # before a rollback removes the pods
            await _after_failure(ctx, name, base)
            events = tuple(causes + await failing_pods(ctx, name))
            message = f"Helm: {exc.message}" if isinstance(exc, HelmError) else exc.message
            remedy = ("change what the causes below name, then `hfwizard resume`" if causes else exc.remedy)
            raise StepError(message, remedy, events) from None
        return StepResult(f"release {name} {info.status} at revision {info.revision} ({info.chart})",
                          {"release": name, "revision": info.revision, "values_hash": vhash,
                           "chart": f"{spec.chart} {spec.version}"})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        assert ctx.step.release is not None
        name, revision = ctx.step.release.release, record.revision
        found = await release_record(ctx, name)
        if found is None:
            return False, f"release {name} is gone"
        rev, status = found
        if status != "deployed" or (revision is not None and rev != revision):
            return False, f"release {name} is {status} at revision {rev} (journal: deployed at {revision})"
        # Done with what this plan installs? A replanned run (a new platform version, changed answers) has other
        # charts or values for the same step: what an earlier run deployed is then not done for this one.
        spec = ctx.step.release
        chart = f"{spec.chart} {spec.version}"
        if record.record.get("chart") not in (None, chart):
            return False, f"release {name} has {record.record['chart']}; this plan installs {chart}"
        if record.record.get("values_hash") not in (None, values_hash(await release_values(ctx, spec))):
            return False, f"release {name} was deployed with other values than this plan's"
        return True, f"release {name} deployed at revision {rev}"


async def release_record(ctx: StepContext, name: str) -> tuple[int, str] | None:
    """(revision, status) of the release: from Helm's records through the API (no Helm start),
    else from Helm itself (a storage driver other than Secrets)."""
    record = await asyncio.to_thread(ctx.kube.release_record, ctx.namespace, name)
    if record is not None or helm_records_in_secrets():
        # With the Secrets driver, Helm finds a release by this very label query, so "no record"
        # is Helm's answer too; asking it would cost a round trip through Helm's child to hear "not found".
        return record
    try:
        info = await ctx.helm.status(name, ctx.namespace)
    except ReleaseNotFound:
        return None
    return info.revision, info.status


async def manifest_objects(ctx: StepContext, release: str) -> list[ManifestObject] | None:
    """What the release's latest revision lists: from Helm's record through the API (no Helm start),
    else from Helm itself (another storage driver). None when the release has no record."""
    if helm_records_in_secrets():
        return await asyncio.to_thread(release_objects, ctx.kube, ctx.namespace, release)
    try:
        rows = await ctx.helm.release_objects(release, ctx.namespace)
    except ReleaseNotFound:
        return None
    return [ManifestObject(kind, name, ns) for kind, name, ns in rows]


async def diagnosis(ctx: StepContext, release: str, hints: diagnose.Hints | None = None) -> list[diagnose.Diagnosis]:
    """Why the release's pods are not ready, one Diagnosis per cause (empty when none is known)."""
    try:
        objects = await manifest_objects(ctx, release) or []
        hints = hints or diagnose.hints_for(ctx.profile, release)
        return await asyncio.to_thread(diagnose.release_diagnosis, ctx.kube, ctx.namespace, objects, hints)
    except Exception:  # a blip of the API: the explanation is a help, never a reason to fail
        return []


async def failing_pods(ctx: StepContext, release: str) -> list[str]:
    """The release's unready pods: why they wait, and their last Warning events."""
    try:
        objects = await manifest_objects(ctx, release) or []
    except HelmError:
        return []
    return await asyncio.to_thread(pod_events, ctx.kube, ctx.namespace, objects)


def _adoptable(ctx: StepContext, name: str, current: tuple[int, str] | None, vhash: str) -> StepResult | None:
    """A release the interrupted run's own Helm call finished: deployed at the revision after the
    one it started from, with the same values. Taking it as done spares a needless upgrade."""
    prev = ctx.previous
    if prev is None or current is None or current[1] != "deployed":
        return None
    revision = current[0]
    notes = [n for n in prev.notes if n.get("action") == "helm"]
    if not notes:
        return None
    base = notes[-1].get("base_revision")
    if notes[-1].get("values_hash") != vhash or base is None or revision != int(base) + 1:
        return None
    ctx.log(f"release {name} was deployed at revision {revision} by the interrupted run with these "
            "values: not repeating it")
    return StepResult(f"release {name} deployed at revision {revision} (finished by the interrupted run)",
                      {"release": name, "revision": revision, "values_hash": vhash, "adopted": True})


async def _watch(ctx: StepContext, release: str, call: asyncio.Task[ReleaseInfo], seen: list[float]) -> ReleaseInfo:
    """Wait for Helm while reporting ready replicas; fail as stalled when nothing moves."""
    stall = ctx.profile.install.stall_seconds
    last: tuple[int, int] | None = None
    waiting = ""
    explained = _Explainer(ctx, release)
    try:
        while True:
            done, _ = await asyncio.wait({call}, timeout=ctx.run.poll_interval)
            if done:
                return call.result()
            loads: list[Workload] | None
            try:
                objects = await manifest_objects(ctx, release)
                loads = await asyncio.to_thread(workload_states, ctx.kube, objects or [], PROGRESS_MAX_AGE)
            except Exception:
                loads = None  # a blip of the API; Helm is still working
            if loads is not None:
                prog = (sum(w.ready for w in loads), sum(w.desired for w in loads))
                waiting = progress_text(loads)
                if prog != last:
                    last = prog
                    seen[0] = time.monotonic()
                    ctx.progress(prog[0], prog[1], waiting)
            if loads:
                ctx.kill_point("mid")  # Helm has applied the manifests and is waiting
            if loads and any(not w.is_ready for w in loads):
                await explained.poll()
            now = time.monotonic()
            if now - seen[0] > stall:
                raise StepError(f"stalled: nothing advanced for {stall}s (install.stallSeconds)"
                                + (f"; {last[0]}/{last[1]} replicas ready, {waiting}" if last else ""),
                                remedy="look at the failing pods' events below; `hfwizard resume` retries")
            if ctx.remaining() <= 0:
                raise ctx.out_of_time()
    finally:
        if not call.done():
            call.cancel()  # cancels this call's Helm context: Helm records the release as failed
            with contextlib.suppress(asyncio.CancelledError, HelmError):
                await call


class _Explainer:
    """Says once, as a warning under the step, each new cause that keeps the release waiting, from
    DIAGNOSE_AFTER seconds into the wait (a pod being pulled or started is not worth a line)."""

    def __init__(self, ctx: StepContext, release: str) -> None:
        self.ctx, self.release = ctx, release
        self.started = time.monotonic()
        self.next = self.started + DIAGNOSE_AFTER
        self.said: set[str] = set()
        self.hints: diagnose.Hints | None = None

    async def poll(self) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + DIAGNOSE_EVERY
        if self.hints is None:
            self.hints = await asyncio.to_thread(diagnose.hints_for, self.ctx.profile, self.release)
        for d in await diagnosis(self.ctx, self.release, self.hints):
            if d.line not in self.said:
                self.said.add(d.line)
                self.ctx.log(d.line, level="warning", source="diagnose")


async def _after_failure(ctx: StepContext, release: str, base_revision: int) -> None:
    """With rollback-on-failure: back to the revision the step started from, or remove a first install."""
    if not ctx.run.rollback_on_failure:
        return
    helm, ns = ctx.helm, ctx.namespace
    timeout = max(30.0, ctx.remaining())
    try:
        await ctx.fence()
        if base_revision > 0:
            ctx.log(f"rolling {release} back to revision {base_revision} (--rollback-on-failure)", level="warning")
            await helm.rollback(release, ns, base_revision, wait=True, timeout_s=timeout,
                                on_log=lambda line: ctx.log(line, source="helm"))
        else:
            ctx.log(f"removing the failed first install of {release} (--rollback-on-failure)", level="warning")
            await helm.uninstall(release, ns, wait=True, timeout_s=timeout,
                                 on_log=lambda line: ctx.log(line, source="helm"))
    except HelmError as exc:
        ctx.log(f"rollback failed too: {exc.message}", level="error")


async def release_values(ctx: StepContext, spec: ServiceRelease) -> dict[str, Any]:
    """The release's values plus a checksum of its env Secret's content as a pod annotation: pods do not
    restart when a Secret changes, so a changed secret must change the pod template."""
    if spec.env_secret is None:
        return spec.values
    found = await asyncio.to_thread(ctx.kube.read_secret, ctx.namespace, spec.env_secret.name)
    annotations = dict(spec.values.get("podAnnotations") or {})
    annotations[ENV_CHECKSUM] = content_hash(decoded(found))
    return {**spec.values, "podAnnotations": annotations}


def values_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def helm_level(line: str) -> str:
    word = line.split(" ", 2)[1] if line.startswith("helm ") and " " in line[5:] else ""
    return {"DEBUG": "debug", "WARNING": "warning", "WARN": "warning", "ERROR": "error"}.get(word, "info")


def helm_records_in_secrets() -> bool:
    """Whether Helm keeps release records in Secrets: its default, changed only through HELM_DRIVER
    (read by the helm binary; the embedded SDK is never given a driver, so it always uses Secrets)."""
    return os.environ.get("HELM_DRIVER", "").strip().lower() in ("", "secret", "secrets")
