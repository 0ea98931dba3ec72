"""The databases step: create each service's database on the managed PostgreSQL when it is missing.

Idempotent (a second run creates nothing). The sandbox has no PostgreSQL: its rehearsal of this step says
what it would create and touches nothing.
"""

from __future__ import annotations

import asyncio

from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.errors import HfwizardError
from hfwizard.platform.databases import ensure_databases, profile_conninfo
from hfwizard.secrets import resolve
from hfwizard.store.journal import StepState


@register(StepKind.DATABASES)
class DatabasesStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        names = list(ctx.step.databases)
        pg = ctx.profile.postgres
        if ctx.profile.is_sandbox:
            return StepResult(f"rehearsal: no PostgreSQL in the sandbox; an install would make sure "
                              f"{', '.join(names)} exist")
        if not pg.host:
            raise StepError("postgres.host is not set: the services' databases cannot be created",
                            remedy="set postgres.host (and postgres.password) in the profile")
        password = None
        if pg.password is not None:
            password = resolve(pg.password, base_dir=ctx.run.secrets_base_dir).reveal()
        conninfo = profile_conninfo(ctx.profile, password)
        await ctx.fence()
        try:
            created = await asyncio.to_thread(ensure_databases, conninfo, names)
        except HfwizardError as exc:
            raise StepError(exc.message, exc.remedy) from None
        where = f"{pg.host}:{pg.port}"
        if created:
            ctx.log(f"created on {where}: {', '.join(created)}")
        return StepResult(f"{len(names)} databases on {where}: {len(created)} created, "
                          f"{len(names) - len(created)} already there", {"created": created})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        return True, f"databases made sure of in an earlier run ({', '.join(ctx.step.databases)})"
