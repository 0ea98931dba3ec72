"""Day-two runs over the engine: uninstall and upgrade (snapshot, rollback), and an upgrade's plan diff.

Front ends reach these through hfwizard.operations (`uninstall_run`, `upgrade_run`, `upgrade_changes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.errors import ExitCode, HfwizardError
from hfwizard.operations import InstallRun, Target, _cluster, resolve_target

if TYPE_CHECKING:
    from hfwizard.events import Event
    from hfwizard.profile import InstallProfile


class DayTwoRun(InstallRun):
    """An engine run over a given plan and journal (uninstall, upgrade) with install's lock and resume."""

    def __init__(self, profile: InstallProfile, state_dir: Path, plan: Any, *, journal_dir: Any = None,
                 target: Target | None = None, done_message: str | None = None, resume_hint: str = "",
                 signals: bool = False) -> None:
        super().__init__(profile, state_dir, target=target, signals=signals)
        self.plan = plan
        self.journal_dir = journal_dir
        self.done_message = done_message
        self.resume_hint = resume_hint

    def _make_engine(self, reached: Target) -> Any:
        from hfwizard.engine.engine import Engine, EngineOptions

        options = EngineOptions(kubeconfig=reached.kubeconfig, context=reached.context, rollback_on_failure=False,
                                replan=self.replan, done_message=self.done_message)
        if self.resume_hint:
            options.resume_hint = self.resume_hint
        return Engine(self.profile, self.journal_dir or self.state_dir, options=options, plan=self.plan)


def uninstall_run(install: Path, *, delete_data: bool, target: Target | None = None,
                  signals: bool = False) -> DayTwoRun:
    """`hfwizard uninstall NAME`: the install's releases in reverse order (then its data, when the
    caller had the operator type the install's name). Run again after a kill, it carries on."""
    from hfwizard.daytwo.uninstall import UninstallDir, applied_objects, installed_releases, uninstall_plan
    from hfwizard.store.install_dir import InstallDir

    idir = InstallDir(install)
    profile = idir.load_profile().profile
    plan = uninstall_plan(profile.target.namespace, installed_releases(idir), delete_data=delete_data,
                          objects=applied_objects(profile))
    return DayTwoRun(profile, install, plan, journal_dir=UninstallDir(install), target=target, signals=signals,
                     done_message=f"Highflame ({profile.metadata.name}) is uninstalled",
                     resume_hint=f"run `hfwizard uninstall {profile.metadata.name}` again to carry on")


class UpgradeRun(DayTwoRun):
    """`hfwizard upgrade NAME`: the install's plan for the new profile, run as an install (same journal,
    lock, resume and stall detection), after a snapshot step. A failure never uninstalls anything; with
    `rollback_on_failure` the releases and owned Secrets this upgrade changed go back to the snapshot,
    and the releases and Secrets it added are removed."""

    def __init__(self, profile: InstallProfile, state_dir: Path, plan: Any, *, rollback_on_failure: bool = False,
                 target: Target | None = None, signals: bool = False, secrets_base_dir: Path | None = None) -> None:
        from hfwizard.engine.steps.upgrade import with_snapshot

        super().__init__(profile, state_dir, with_snapshot(plan), target=target, signals=signals,
                         done_message=f"Highflame ({profile.metadata.name}) is upgraded",
                         resume_hint=f"run `hfwizard upgrade {profile.metadata.name}` again to carry on")
        self.secrets_base_dir = secrets_base_dir
        self.rollback = rollback_on_failure
        self.rolled_back: list[str] = []
        self.removed: list[str] = []  # releases the upgrade installed, uninstalled by the rollback

    def _make_engine(self, reached: Target) -> Any:
        engine = super()._make_engine(reached)
        engine.options.secrets_base_dir = self.secrets_base_dir
        return engine

    async def _engine_events(self, reached: Target) -> AsyncIterator[Event]:
        from hfwizard.events import InstallFinished

        finished: InstallFinished | None = None
        async for event in super()._engine_events(reached):
            if isinstance(event, InstallFinished):
                finished = event  # held back: the rollback's lines come before the run's last word
                continue
            yield event
        if finished is None:
            return
        if self.exit_code == ExitCode.OK:
            await self._drop_snapshot(reached)
        elif self.exit_code == ExitCode.FAILED and self.rollback:
            async for event in self._roll_back(reached):
                yield event
            removed = f"; uninstalled: {', '.join(self.removed)}" if self.removed else ""
            finished = InstallFinished(finished.status, finished.exit_code, f"{finished.message}; rolled back: "
                                       f"{', '.join(self.rolled_back) or 'nothing'}{removed}")
        yield finished

    async def _kube(self, reached: Target) -> Any:
        import asyncio

        from hfwizard.engine.kube import Kube, connect

        return Kube(await asyncio.to_thread(connect, reached.kubeconfig, reached.context))

    async def _drop_snapshot(self, reached: Target) -> None:
        import asyncio

        from hfwizard.daytwo.upgrade import drop_snapshot

        kube = await self._kube(reached)
        await asyncio.to_thread(drop_snapshot, kube, self.profile.target.namespace)

    async def _roll_back(self, reached: Target) -> AsyncIterator[Event]:
        """Under the install lock again: the engine gave it up when its run ended."""
        import asyncio

        from hfwizard.daytwo.upgrade import drop_snapshot, read_snapshot, roll_back
        from hfwizard.engine.engine import make_backend
        from hfwizard.engine.lock import InstallLock
        from hfwizard.events import LogLine
        from hfwizard.store.install_dir import InstallDir

        ns = self.profile.target.namespace
        kube = await self._kube(reached)
        snap = await asyncio.to_thread(read_snapshot, kube, ns)
        if snap is None:
            yield LogLine("rollback", "no upgrade snapshot in the cluster: nothing to roll back to", level="error")
            return
        lines: list[str] = []
        helm = make_backend(self.profile, self._engine.options)
        async with InstallLock(InstallDir(self.state_dir), self.profile.metadata.name, kube.api_client, ns,
                               lease_seconds=self._engine.options.lease_seconds):
            try:
                outcome = await roll_back(kube, helm, ns, snap, log=lines.append,
                                          timeout_s=max(60.0, float(self.profile.install.timeout_seconds)))
                self.rolled_back, self.removed, failed = outcome.rolled, outcome.removed, outcome.failed
            finally:
                aclose = getattr(helm, "aclose", None)
                if aclose is not None:
                    await aclose()
            if not failed:
                await asyncio.to_thread(drop_snapshot, kube, ns)
        for line in lines:
            yield LogLine("rollback", line, level="warning")
        for problem in failed:
            yield LogLine("rollback", f"could not roll back {problem}", level="error")


def upgrade_changes(install: Path, profile: InstallProfile, plan: Any, *, target: Target | None = None,
                    secrets_base_dir: Path | None = None) -> list[str]:
    """What the upgrade to `profile` changes, per release (chart, image tag, values) and per Secret
    (keys only: a secret value is never shown), read from the cluster now."""
    import asyncio

    from hfwizard.daytwo.upgrade import release_changes, secret_changes

    async def go() -> list[str]:
        from hfwizard.engine.kube import Kube, connect

        async with _cluster(profile, install, target or resolve_target(profile)) as reached:
            kube = Kube(await asyncio.to_thread(connect, reached.kubeconfig, reached.context))
            changes = await asyncio.to_thread(release_changes, kube, plan, chart_label)
            planned = await asyncio.to_thread(planned_secrets, kube, profile, plan, secrets_base_dir)
            secrets = await asyncio.to_thread(secret_changes, kube, plan.namespace, planned)
        lines = [line for c in changes for line in c.lines()]
        return lines + secrets

    return asyncio.run(go())


def planned_secrets(kube: Any, profile: InstallProfile, plan: Any, base: Path | None) -> dict[str, dict[str, str]]:
    """The content the plan's Secrets steps would write (held in memory for the comparison only); `k8s:`
    references read from the cluster as the engine would. A Secret whose references cannot be resolved
    here is left out (the run itself fails on it, naming the reference)."""
    from hfwizard.engine.plan import StepKind
    from hfwizard.engine.steps.secrets import ReferenceResolver
    from hfwizard.platform.secretspec import materialize

    resolver = ReferenceResolver(kube, plan.namespace, base=base, rehearsal=profile.is_sandbox)
    out: dict[str, dict[str, str]] = {}
    for step in plan.steps:
        if step.kind is not StepKind.SECRETS:
            continue
        for spec in step.secrets:
            if spec.generated_keys:
                continue  # generated ones are made once and kept: an upgrade never changes them
            with contextlib.suppress(HfwizardError):
                out[spec.name] = materialize(spec, resolver)
    return out


def chart_label(spec: Any) -> str:
    """`name-version` of a release's chart (a ServiceRelease names both)."""
    return f"{spec.chart}-{spec.version}"
