"""What a step sees while it runs: the run's services, and `child()`, which journals and reports a step.

    async with run.child(step, attempt) as ctx:    # step_started: journal + StepStarted event
        ctx.finish(await runner.run(ctx))          # step_finished + StepFinished, or on an exception
                                                   # step_failed + StepFailed (interrupted on cancel)

As subiquity's `context.child()` does, the start and end events of a step come from one place, so a
step kind never writes them by hand; it only logs, reports progress, notes what it is about to do,
and calls `fence()` before each change it makes to the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.engine.helm import HelmBackend
from hfwizard.engine.kube import Kube
from hfwizard.engine.plan import Plan, Step
from hfwizard.errors import HfwizardError
from hfwizard.events import Event, LogLine, StepFailed, StepFinished, StepProgress, StepStarted
from hfwizard.profile import InstallProfile
from hfwizard.store.journal import STEP_FAILED, STEP_FINISHED, STEP_NOTE, STEP_STARTED, Journal, StepState

KILL_ENV = "HFWIZARD_TEST_KILL_AT"  # test hook: SIGKILL ourselves at a named point (see kill_point)
STOP_ENV = "HFWIZARD_TEST_STOP_AT"  # test hook: SIGSTOP ourselves at a named point (a frozen laptop)


class StepError(Exception):
    """A step failed: what to show, what to do, and the failing pods' last events."""

    def __init__(self, message: str, remedy: str | None = None, pod_events: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.pod_events = pod_events


@dataclass(frozen=True)
class StepResult:
    """What a finished step reports (`detail`) and keeps in its journal record (`record`, for resume)."""

    detail: str
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """The services every step of one run shares; the engine builds it once the lock is held."""

    profile: InstallProfile
    plan: Plan
    journal: Journal
    kube: Kube
    helm: HelmBackend
    emit: Callable[[Event], None]
    fence: Callable[[], Awaitable[None]]  # raises LockLost when another install took the target over
    deadline: float
    poll_interval: float = 0.5
    rollback_on_failure: bool = False
    secrets_base_dir: Path | None = None
    cache_dir: Path = Path("cache")  # the install's cache (fetched charts); the engine gives its own
    previous: dict[str, StepState] = field(default_factory=dict)  # the unfinished run's steps (resume)
    kill_at: str | None = field(default_factory=lambda: os.environ.get(KILL_ENV) or None)
    stop_at: str | None = field(default_factory=lambda: os.environ.get(STOP_ENV) or None)

    @property
    def namespace(self) -> str:
        return self.plan.namespace

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, step_id: str, line: str, *, level: str = "info", source: str = "hfwizard") -> None:
        self.emit(LogLine(step_id, line, level=level, source=source))

    def kill_point(self, name: str) -> None:
        # Only the crash-and-resume and lock tests set these; an ordinary run never stops here.
        if self.kill_at is not None and self.kill_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.stop_at is not None and self.stop_at == name:
            os.kill(os.getpid(), signal.SIGSTOP)

    @contextlib.asynccontextmanager
    async def child(self, step: Step, attempt: int) -> AsyncIterator[StepContext]:
        """Run one step: the lock is checked, then start and end are journalled and reported here."""
        await self.fence()
        self.journal.append(STEP_STARTED, step=step.id, attempt=attempt)
        self.emit(StepStarted(step.id, step.title, attempt))
        self.kill_point(f"{step.id}:started")
        ctx = StepContext(self, step)
        try:
            if self.remaining() <= 0:
                raise ctx.out_of_time()
            yield ctx
            if ctx.result is None:
                raise StepError(f"step {step.id} ended without a result")  # a bug in a step kind
        except asyncio.CancelledError:
            self._failed(step, "interrupted", "run `hfwizard resume` to carry on", interrupted=True)
            raise
        except StepError as exc:
            self._failed(step, exc.message, exc.remedy, exc.pod_events)
            raise
        except HfwizardError as exc:  # LockLost included: the journal is ours, the cluster is not
            self._failed(step, exc.message, exc.remedy)
            raise
        except Exception as exc:
            self._failed(step, f"{type(exc).__name__}: {api_reason(exc)}")
            raise
        self.kill_point(f"{step.id}:applied")
        self.journal.append(STEP_FINISHED, step=step.id, status="ok", detail=ctx.result.detail, **ctx.result.record)
        self.emit(StepFinished(step.id, "ok", ctx.result.detail))
        self.kill_point(f"{step.id}:finished")

    def _failed(self, step: Step, message: str, remedy: str | None = None, pod_events: tuple[str, ...] = (),
                *, interrupted: bool = False) -> None:
        extra = {"interrupted": True} if interrupted else {}
        self.journal.append(STEP_FAILED, step=step.id, error=message, **extra)
        self.emit(StepFailed(step.id, message, remedy, pod_events, interrupted=interrupted))


class StepContext:
    """One step's view of the run: its id, logging and progress under that id, journal notes."""

    def __init__(self, run: RunContext, step: Step) -> None:
        self.run = run
        self.step = step
        self.result: StepResult | None = None

    @property
    def id(self) -> str:
        return self.step.id

    @property
    def profile(self) -> InstallProfile:
        return self.run.profile

    @property
    def plan(self) -> Plan:
        return self.run.plan

    @property
    def namespace(self) -> str:
        return self.step.namespace or self.run.plan.namespace

    @property
    def kube(self) -> Kube:
        return self.run.kube

    @property
    def helm(self) -> HelmBackend:
        return self.run.helm

    @property
    def previous(self) -> StepState | None:
        """What the unfinished run this one resumes recorded for this step (None on a fresh run)."""
        return self.run.previous.get(self.step.id)

    def finish(self, result: StepResult) -> None:
        self.result = result

    def log(self, line: str, *, level: str = "info", source: str = "hfwizard") -> None:
        self.run.log(self.step.id, line, level=level, source=source)

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.run.emit(StepProgress(self.step.id, done, total, message))

    def note(self, **fields: Any) -> None:
        """Journal what the step is about to do, before it does it, so a resume can tell what happened."""
        self.run.journal.append(STEP_NOTE, step=self.step.id, **fields)

    def kill_point(self, where: str) -> None:
        self.run.kill_point(f"{self.step.id}:{where}")

    def remaining(self) -> float:
        return self.run.remaining()

    async def fence(self) -> None:
        """Call before each change to the cluster: raises LockLost when the target is no longer ours."""
        await self.run.fence()

    def out_of_time(self) -> StepError:
        return StepError(f"the install ran out of its {self.profile.install.timeout_seconds}s "
                         "(install.timeoutSeconds)", remedy="raise install.timeoutSeconds and resume")


def api_reason(exc: BaseException) -> str:
    """A Kubernetes API error as one line: status, reason and the API's message."""
    reason = getattr(exc, "reason", None)
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if status is not None:
        message = ""
        with contextlib.suppress(Exception):
            message = json.loads(body or "{}").get("message", "")
        return f"Kubernetes API {status} {reason or ''}: {message}".strip()
    return str(exc)


__all__ = ["KILL_ENV", "STOP_ENV", "RunContext", "StepContext", "StepError", "StepResult", "api_reason"]
