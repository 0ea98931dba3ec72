"""The install engine's run loop: lock, journal, resume, and the plan's steps run along its graph.

    engine = Engine(profile, install_dir, kubeconfig=..., context=...)
    async for event in engine.run():      # StepStarted, StepProgress, LogLine, StepFinished,
        ...                               # StepFailed, InstallFinished (always last)
    engine.exit_code                      # 0 done, 1 failed, 2 changed profile, 3 interrupted, 4 locked

The same call resumes: when the install's journal shows an unfinished run, every step it finished is
checked against the cluster (each kind's `still_done`) and skipped, and the run carries on from the
first unfinished step. Steps whose dependencies are done run side by side, at most
`install.maxParallel` at once. What a step does lives in `hfwizard.engine.steps`, one module per
kind; this loop never names a kind. `engine.cancel()` (or SIGINT/SIGTERM through
`install_signal_handlers`) interrupts the running steps: they are journalled as interrupted and the
run ends with exit code 3. Losing the install lock to another install (we were frozen past the
Lease's duration) stops the run before its next change to the cluster, with exit code 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.engine import helm_guard
from hfwizard.engine.context import RunContext, StepContext
from hfwizard.engine.helm import HelmBackend
from hfwizard.engine.kube import Kube
from hfwizard.engine.plan import Plan, Step, StepKind, build_plan
from hfwizard.engine.steps import runner_for
from hfwizard.engine.steps.release import values_hash
from hfwizard.errors import ExitCode, HfwizardError, LockHeld, LockLost
from hfwizard.events import Event, InstallFinished, LogLine, StepFinished
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import diff_profiles, profile_data, profile_hash
from hfwizard.store.install_dir import InstallDir
from hfwizard.store.journal import INSTALL_FINISHED, INSTALL_STARTED, Journal, JournalState
from hfwizard.store.status import InstallStatus, StepStatus

__all__ = ["Engine", "EngineOptions", "install_signal_handlers", "make_backend",
           "values_hash"]

HELM_KINDS = frozenset({StepKind.RELEASE, StepKind.UNINSTALL})  # steps bounded by install.maxParallel
HELM_GUARD_WAIT = 15.0  # a killed run's Helm child ends within its grace (5 s) of its parent's death
LEASE_ENV = "HFWIZARD_LEASE_SECONDS"  # the install Lease's duration (tests shorten it)


def _lease_seconds() -> int:
    with contextlib.suppress(ValueError):
        return max(2, int(os.environ.get(LEASE_ENV, "30")))
    return 30


@dataclass
class EngineOptions:
    kubeconfig: str | None = None
    context: str | None = None
    rollback_on_failure: bool | None = None  # None: the profile's install.rollbackOnFailure
    replan: bool = False  # accept a profile changed since the unfinished run
    lease_seconds: int = field(default_factory=_lease_seconds)
    poll_interval: float = 0.5
    secrets_base_dir: Path | None = None  # where relative file: references are read from
    # What a finished or interrupted run says: day-two runs (uninstall) are not an install.
    done_message: str | None = None
    resume_hint: str = "run `hfwizard resume` to carry on"


type Outcome = tuple[int, InstallStatus, str]


class Engine:
    """Installs (or resumes installing) one profile into its target; see the module docstring."""

    def __init__(self, profile: InstallProfile, install_dir: Path | InstallDir, *, helm: HelmBackend | None = None,
                 options: EngineOptions | None = None, kube: Kube | None = None, plan: Plan | None = None) -> None:
        self.profile = profile
        self.install = install_dir if isinstance(install_dir, InstallDir) else InstallDir(Path(install_dir))
        self.install_dir = self.install.path
        self.options = options or EngineOptions()
        self.plan: Plan = plan or build_plan(profile)
        self.journal = Journal(self.install.journal_path)
        self._helm = helm
        self._owns_helm = helm is None  # a backend the engine makes, it also warms up and closes
        self._helm_guard_busy = False  # a Helm child of a killed run holds the guard (see _drive_inner)
        self._kube = kube
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled = False
        self._lost: LockLost | None = None
        self._ctx: RunContext | None = None
        self.exit_code: int | None = None
        self.resumed = False

    # ---- public ----------------------------------------------------------------------------------

    @property
    def rollback_on_failure(self) -> bool:
        opt = self.options.rollback_on_failure
        return self.profile.install.rollback_on_failure if opt is None else opt

    def cancel(self) -> None:
        """Interrupt: running steps are journalled as interrupted; the run ends with exit code 3."""
        self._cancelled = True
        for task in self._tasks.values():
            task.cancel()

    async def run(self) -> AsyncIterator[Event]:
        """Run the install (or carry on an unfinished one), yielding events; InstallFinished is last."""
        driver = asyncio.create_task(self._drive(), name="hfwizard-engine")
        try:
            while True:
                event = await self._queue.get()
                if event is None:
                    break
                yield event
        finally:
            if not driver.done():
                self.cancel()
                driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver

    # ---- the run ---------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def _lock_lost(self, exc: LockLost) -> None:
        """The Lease renewer saw another install take the target: stop every step now."""
        if self._lost is None:
            self._lost = exc
        for task in self._tasks.values():
            task.cancel()

    async def _drive(self) -> None:
        try:
            code, status, message = await self._drive_inner()
        except asyncio.CancelledError:
            code, status, message = ExitCode.INTERRUPTED, InstallStatus.INTERRUPTED, "interrupted"
        except HfwizardError as exc:
            code, status, message = exc.exit_code, InstallStatus.FAILED, str(exc)
        except Exception as exc:  # an unexpected failure must still end the stream with an answer
            code, status = ExitCode.FAILED, InstallStatus.FAILED
            message = f"internal error: {type(exc).__name__}: {exc}"
        self.exit_code = int(code)
        self._emit(InstallFinished(str(status), int(code), message))
        self._queue.put_nowait(None)

    async def _drive_inner(self) -> Outcome:
        prof = self.profile
        data = profile_data(prof)
        phash = profile_hash(prof)
        previous = self.journal.state()
        unfinished = previous.runs > 0 and previous.status is not InstallStatus.OK
        if unfinished and previous.profile_hash != phash and not self.options.replan:
            changes = diff_profiles(previous.profile or {}, data)
            lines = "\n".join(f"  - {c}" for c in changes) or "  - (the saved answers differ)"
            return (ExitCode.BAD_INPUT, InstallStatus.REFUSED,
                    f"the profile changed since the unfinished install began:\n{lines}\n"
                    "  -> put the answers back, or run `hfwizard resume --replan` to carry on with the new ones")
        self.resumed = unfinished
        if self._helm is None:
            self._helm = make_backend(prof, self.options, kube_cache=self.install.cache_dir / "kube",
                                      guard=self.install.helm_guard_path)
        # A Helm child of a killed run may still be recording its cancelled calls: ours starts after it
        # has gone (waited for once the install lock is ours, see _locked_run and engine/helm_guard.py).
        self._helm_guard_busy = self._owns_helm and helm_guard.busy(self.install.helm_guard_path)
        prewarm = getattr(self._helm, "prewarm", None) if self._owns_helm and not self._helm_guard_busy else None
        if prewarm is not None and any(s.kind is StepKind.RELEASE for s in self.plan.steps):
            # Helm's child (one for the whole run: every release step's calls go to it, several at
            # once) starts and loads the Go SDK (about 0.15 s) while this process imports the
            # kubernetes client (about 0.6 s) and runs the lock, namespace and Secrets steps. Only the
            # process starts early: each call, values included, goes over its stdin when its step runs.
            await prewarm()
        try:
            return await self._locked_run(previous if unfinished else JournalState(), phash, data)
        finally:
            aclose = getattr(self._helm, "aclose", None) if self._owns_helm else None
            if aclose is not None:
                await aclose()  # Helm's child ends here (cancelling whatever a cancelled run left)

    async def _locked_run(self, previous: JournalState, phash: str, data: dict[str, Any]) -> Outcome:
        prof = self.profile
        from hfwizard.engine.lock import InstallLock

        if self._kube is None:
            from hfwizard.engine.kube import connect

            client = await asyncio.to_thread(connect, self.options.kubeconfig, self.options.context)
            self._kube = Kube(client)
        lock = InstallLock(self.install, prof.metadata.name, self._kube.api_client, prof.target.namespace,
                           lease_seconds=self.options.lease_seconds, on_lost=self._lock_lost)
        try:
            await lock.__aenter__()
        except LockHeld as exc:
            return ExitCode.LOCKED, InstallStatus.LOCKED, str(exc)
        try:
            if self._helm_guard_busy and not await self._helm_guard_freed():
                return (ExitCode.LOCKED, InstallStatus.LOCKED,
                        f"a Helm process of an earlier run of this install still works after {HELM_GUARD_WAIT:g}s "
                        f"(it holds {self.install.helm_guard_path})\n"
                        "  -> find it with `fuser -v` on that file and end it, then run again")
            if lock.lease.took_over_from is not None:
                self._emit(LogLine("lock", f"took over the install lock left by "
                                           f"{lock.lease.took_over_from.describe()}, which no longer runs",
                                   level="warning"))
            assert self._helm is not None
            self._ctx = RunContext(
                prof, self.plan, self.journal, self._kube, self._helm, self._emit, lock.check,
                deadline=time.monotonic() + prof.install.timeout_seconds, poll_interval=self.options.poll_interval,
                rollback_on_failure=self.rollback_on_failure, secrets_base_dir=self.options.secrets_base_dir,
                cache_dir=self.install.cache_dir, previous=previous.steps if self.resumed else {})
            with self.journal:
                return await self._run_plan(previous, phash, data)
        finally:
            await lock.__aexit__(None, None, None)

    async def _helm_guard_freed(self) -> bool:
        self._emit(LogLine("lock", "waiting for the Helm process of the interrupted run to record its cancelled "
                                   "calls and end", level="warning"))
        return await asyncio.to_thread(helm_guard.wait_free, self.install.helm_guard_path, HELM_GUARD_WAIT)

    async def _run_plan(self, previous: JournalState, phash: str, data: dict[str, Any]) -> Outcome:
        ctx = self._ctx
        assert ctx is not None
        self.journal.append(INSTALL_STARTED, run=previous.runs + 1, mode="resume" if self.resumed else "install",
                            profile_hash=phash, profile=data, plan=self.plan.ids)
        ctx.kill_point("run:started")
        done: set[str] = await self._verify_done(previous) if self.resumed else set()
        started: set[str] = set(done)
        failed: str | None = None
        interrupted = False
        helm_slots = self.profile.install.max_parallel
        while True:
            if not self._cancelled and failed is None and self._lost is None:
                # Only Helm operations are bounded (each holds a Helm call and its memory); a step is
                # started only when it can run, so the next free slot goes to whatever is then the
                # critical path (plan.ready orders by it), not to whoever queued first.
                running_helm = sum(self.plan.step(sid).kind in HELM_KINDS for sid in self._tasks)
                for step in self.plan.ready(done, started):
                    if step.kind in HELM_KINDS:
                        if running_helm >= helm_slots:
                            continue
                        running_helm += 1
                    started.add(step.id)
                    attempt = previous.step(step.id).attempts + 1 if self.resumed else 1
                    self._tasks[step.id] = asyncio.create_task(self._run_step(step, attempt),
                                                               name=f"step {step.id}")
            if not self._tasks:
                break
            finished, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                sid = next(k for k, t in self._tasks.items() if t is task)
                del self._tasks[sid]
                exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
                if exc is None:
                    done.add(sid)
                elif isinstance(exc, LockLost):
                    self._lock_lost(exc)
                elif isinstance(exc, asyncio.CancelledError):
                    interrupted = True
                elif failed is None:
                    failed = sid
        ctx.kill_point("run:finishing")
        return self._finish(failed, interrupted)

    def _finish(self, failed: str | None, interrupted: bool) -> Outcome:
        if self._lost is not None:
            # Our run is unfinished (resumable), but the target is another install's now.
            self.journal.append(INSTALL_FINISHED, status=str(InstallStatus.INTERRUPTED), exit_code=int(ExitCode.LOCKED))
            remedy = f"\n  -> {self._lost.remedy}" if self._lost.remedy else ""
            return ExitCode.LOCKED, InstallStatus.LOCKED, f"{self._lost.message}{remedy}"
        if interrupted or self._cancelled:
            self.journal.append(INSTALL_FINISHED, status=str(InstallStatus.INTERRUPTED),
                                exit_code=int(ExitCode.INTERRUPTED))
            return ExitCode.INTERRUPTED, InstallStatus.INTERRUPTED, f"interrupted; {self.options.resume_hint}"
        if failed is not None:
            self.journal.append(INSTALL_FINISHED, status=str(InstallStatus.FAILED), exit_code=int(ExitCode.FAILED),
                                step=failed)
            return (ExitCode.FAILED, InstallStatus.FAILED,
                    f"step {failed} failed; fix the cause and run `hfwizard resume` to retry it")
        self.journal.append(INSTALL_FINISHED, status=str(InstallStatus.OK), exit_code=0)
        if self.options.done_message:
            return ExitCode.OK, InstallStatus.OK, self.options.done_message
        where = " in the sandbox (a rehearsal on an emulated cluster)" if self.profile.is_sandbox else ""
        return ExitCode.OK, InstallStatus.OK, f"Highflame is installed{where}"

    async def _run_step(self, step: Step, attempt: int) -> None:
        assert self._ctx is not None
        if self._lost is not None:
            raise self._lost
        runner = runner_for(step.kind)
        async with self._ctx.child(step, attempt) as sc:
            sc.finish(await runner.run(sc))

    # ---- resume: check what the journal says is done -----------------------------------------------

    async def _verify_done(self, previous: JournalState) -> set[str]:
        assert self._ctx is not None
        done: set[str] = set()
        for step in self.plan.steps:
            st = previous.steps.get(step.id)
            if st is None or st.status is not StepStatus.DONE:
                continue
            if not all(d in done for d in step.depends_on):
                continue  # something it builds on is redone, so it is redone too
            ok, detail = await runner_for(step.kind).still_done(StepContext(self._ctx, step), st)
            if ok:
                done.add(step.id)
                self._emit(StepFinished(step.id, "skipped", f"done in an earlier run; {detail}"))
            else:
                self._ctx.log(step.id, f"journal says done, but {detail}: doing it again", level="warning")
        return done


def make_backend(profile: InstallProfile, options: EngineOptions, *, kube_cache: Path | None = None,
                 guard: Path | None = None) -> HelmBackend:
    """The Helm backend the profile chose: embedded (Go SDK in a child process) or the operator's helm.

    With `kube_cache`, client-go's discovery cache (KUBECACHEDIR, else ~/.kube/cache/discovery/<host_port>)
    goes there: inside the install's state dir, not one more folder in the home directory per cluster
    address (every sandbox run has a new port)."""
    from hfwizard.profile import HelmBackend as Choice

    if profile.install.helm is Choice.CLI:
        from hfwizard.engine.helm_cli import HelmCli

        return HelmCli(profile.install.helm_binary, kubeconfig=options.kubeconfig, context=options.context)
    from hfwizard.engine.helm_embedded import EmbeddedHelm

    # One child serves every Helm call of the run, several at once (one Python and Go runtime, about
    # 75 MiB, rather than one per release in flight). It ends with us on its own (parent-death
    # signal, life pipe), so a SIGKILLed installer leaves no Helm call running to race the `resume`.
    env = dict(os.environ)
    if kube_cache is not None:
        env["KUBECACHEDIR"] = str(kube_cache)
    if guard is not None:  # each child holds it for its life (engine/helm_guard.py)
        env[helm_guard.GUARD_ENV] = str(guard)
    return EmbeddedHelm(options.kubeconfig, options.context, env=env)


def install_signal_handlers(engine: Engine) -> Callable[[], None]:
    """SIGINT and SIGTERM interrupt the engine (exit 3 after the journal is consistent); returns an undo."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.cancel)

    def undo() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    return undo
