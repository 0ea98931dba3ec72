"""The namespace step: create the target namespace (labelled managed-by hfwizard) unless it exists."""

from __future__ import annotations

import asyncio

from hfwizard.engine.context import StepContext, StepResult
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.store.journal import StepState


@register(StepKind.NAMESPACE)
class NamespaceStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        ns = ctx.namespace
        await ctx.fence()
        created = await asyncio.to_thread(ctx.kube.ensure_namespace, ns)
        return StepResult(f"created namespace {ns}" if created else f"namespace {ns} exists")

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        ok = await asyncio.to_thread(ctx.kube.namespace_exists, ctx.namespace)
        return ok, "namespace exists" if ok else "the namespace is gone"
