"""The first step of an upgrade: keep, in the cluster, what a rollback would go back to."""

from __future__ import annotations

import asyncio
import dataclasses

from hfwizard.daytwo.upgrade import SNAPSHOT, drop_snapshot, plan_secrets, read_snapshot, take_snapshot
from hfwizard.engine.context import StepContext, StepResult
from hfwizard.engine.plan import Plan, Step, StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.store.journal import StepState

SNAPSHOT_STEP = "upgrade/snapshot"


@register(StepKind.UPGRADE_SNAPSHOT)
class UpgradeSnapshotStep(StepRunner):
    """Runs under the install lock before anything changes; a resumed upgrade keeps the first snapshot."""

    async def run(self, ctx: StepContext) -> StepResult:
        releases = [r.release for r in ctx.plan.releases]
        await ctx.fence()
        if ctx.previous is None:
            # A new upgrade (not the resume of an unfinished one): a snapshot still here is stale (a
            # finished upgrade whose clean-up failed) and must not become this upgrade's way back.
            await asyncio.to_thread(drop_snapshot, ctx.kube, ctx.namespace)
        snap, new = await asyncio.to_thread(take_snapshot, ctx.kube, ctx.namespace, releases,
                                            plan_secrets(ctx.plan))
        where = ", ".join(f"{k}@{v}" for k, v in sorted(snap.revisions.items())) or "no release yet"
        taken = "snapshot taken" if new else "kept the snapshot the interrupted attempt took"
        added = f"; new: {', '.join(snap.added)}" if snap.added else ""
        ctx.log(f"{taken}: {where}{added}; {len(snap.secrets)} Secrets, {len(snap.created)} to be created")
        return StepResult(f"Secret {SNAPSHOT}: {len(snap.revisions)} releases, {len(snap.secrets)} Secrets",
                          {"revisions": snap.revisions, "added": snap.added})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        found = await asyncio.to_thread(read_snapshot, ctx.kube, ctx.namespace)
        return (found is not None), (f"Secret {SNAPSHOT} is there" if found else f"Secret {SNAPSHOT} is gone")


def with_snapshot(plan: Plan) -> Plan:
    """`plan` with the snapshot step first: every step that needed nothing now needs it."""
    first = Step(SNAPSHOT_STEP, "Keep the current revisions and Secrets for a rollback", StepKind.UPGRADE_SNAPSHOT)
    rest = tuple(s if s.depends_on else dataclasses.replace(s, depends_on=(SNAPSHOT_STEP,)) for s in plan.steps)
    return Plan(plan.namespace, (first, *rest))
