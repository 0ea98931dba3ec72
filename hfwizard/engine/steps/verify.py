"""The verify step: every workload each release's manifest lists is ready, its Services have endpoints,
and the ingress (with TLS when asked) is in place. Waits while things advance; fails on a stall."""

from __future__ import annotations

import asyncio
import time

from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.engine.steps.release import failing_pods, manifest_objects
from hfwizard.engine.workloads import ManifestObject, Workload, objects_of, progress_text, workload_states
from hfwizard.store.journal import StepState


@register(StepKind.VERIFY)
class VerifyStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        stall = ctx.profile.install.stall_seconds
        last_change = time.monotonic()
        last: tuple[int, int] | None = None
        while True:
            made = {rel.release: await manifest_objects(ctx, rel.release) for rel in ctx.plan.releases}
            problems, loads = await asyncio.to_thread(verify_once, ctx, made)
            prog = (sum(w.ready for w in loads), sum(w.desired for w in loads))
            if prog != last:
                last, last_change = prog, time.monotonic()
                ctx.progress(prog[0], prog[1], progress_text(loads))
            if not problems:
                break
            if time.monotonic() - last_change > stall or ctx.remaining() <= 0:
                events: list[str] = []
                for rel in ctx.plan.releases:
                    events += await failing_pods(ctx, rel.release)
                raise StepError("verification failed: " + "; ".join(problems), pod_events=tuple(events))
            await asyncio.sleep(ctx.run.poll_interval)
        ing = ctx.profile.ingress
        tls = "with TLS" if ing.enabled and ing.tls.enabled else "without TLS (tls disabled in the profile)"
        where = f"; ingress {ing.domain} {tls}" if ing.enabled else ""
        return StepResult(f"{len(loads)} workloads ready ({prog[0]}/{prog[1]} replicas); "
                          f"Services have endpoints{where}")

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        return True, "verified in an earlier run; everything it checked is still recorded as done"


def verify_once(ctx: StepContext, made: dict[str, list[ManifestObject] | None]) -> tuple[list[str], list[Workload]]:
    """One pass over what the releases created, `made` being each release's manifest objects
    (blocking: run it in a thread)."""
    kube, ns = ctx.kube, ctx.namespace
    problems: list[str] = []
    loads: list[Workload] = []
    everything: list[ManifestObject] = []
    view = kube.endpoint_view(ns)
    for rel in ctx.plan.releases:
        objects = made.get(rel.release)
        if objects is None:
            problems.append(f"release {rel.release} has no Helm record in namespace {ns}")
            continue
        everything += objects
        found = workload_states(kube, objects)
        loads += found
        for w in found:
            if w.missing:
                problems.append(f"{w.kind} {w.name} (in release {rel.release}'s manifest) is missing")
            elif w.failed:
                problems.append(f"Job {w.name} failed")
            elif not w.is_ready:
                problems.append(f"{w.kind} {w.name}: {w.ready}/{w.desired} ready")
        for svc in objects_of(kube, "Service", objects):
            if not kube.service_has_endpoints(ns, svc, view):
                problems.append(f"Service {svc['metadata']['name']} has no ready endpoints")
    problems += _ingress_problems(ctx, everything)
    return problems, loads


def _ingress_problems(ctx: StepContext, made: list[ManifestObject]) -> list[str]:
    """The platform's hosts are routed (some release made an Ingress) and each TLS entry's Secret is there
    (unless cert-manager fills it: tls.issuer)."""
    ing = ctx.profile.ingress
    if not ing.enabled:
        return []
    ingresses = objects_of(ctx.kube, "Ingress", made)
    if not ingresses:
        return [f"no Ingress for {ing.domain}: none of the releases created one"]
    if not ing.tls.enabled or ing.tls.issuer:
        return []
    wanted = {e["secretName"] for obj in ingresses for e in (obj.get("spec") or {}).get("tls") or []
              if e.get("secretName")}
    return [f"TLS Secret {name} (named by an Ingress) is missing" for name in sorted(wanted)
            if ctx.kube.read_secret(ctx.namespace, name) is None]
