"""Typed events that checks and the install engine publish; every front end only consumes them.

Each event is a frozen dataclass; `to_json` gives the `--json` line (`{"event": ..., ...}`).
Event text never contains a secret value.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfwizard.checks.base import CheckResult


@dataclass(frozen=True)
class Event:
    name: ClassVar[str] = "event"
    at: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class CheckStarted(Event):
    name: ClassVar[str] = "check_started"
    check_id: str
    title: str


@dataclass(frozen=True)
class CheckFinished(Event):
    name: ClassVar[str] = "check"
    result: CheckResult


@dataclass(frozen=True)
class PreflightFinished(Event):
    name: ClassVar[str] = "preflight_finished"
    passed: int
    warned: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class StepStarted(Event):
    name: ClassVar[str] = "step_started"
    step_id: str  # reads like a path: "namespace", "secrets", "helm/clickhouse", "verify"
    title: str
    attempt: int = 1


@dataclass(frozen=True)
class StepProgress(Event):
    name: ClassVar[str] = "progress"
    step_id: str
    done: int  # e.g. ready replicas
    total: int  # e.g. desired replicas
    message: str = ""


@dataclass(frozen=True)
class LogLine(Event):
    name: ClassVar[str] = "log"
    step_id: str
    line: str
    level: str = "info"  # debug, info, warning, error
    source: str = "hfwizard"  # hfwizard, helm, kubernetes


@dataclass(frozen=True)
class StepFinished(Event):
    name: ClassVar[str] = "step_finished"
    step_id: str
    status: str = "ok"  # ok, skipped (already done: verified on resume)
    detail: str = ""


@dataclass(frozen=True)
class StepFailed(Event):
    name: ClassVar[str] = "step_failed"
    step_id: str
    error: str
    remedy: str | None = None
    pod_events: tuple[str, ...] = ()
    interrupted: bool = False


@dataclass(frozen=True)
class InstallFinished(Event):
    name: ClassVar[str] = "done"
    status: str  # ok, failed, interrupted
    exit_code: int
    message: str = ""


def to_json(event: Event) -> dict[str, Any]:
    """The `--json` form: the event's name under "event", then its fields (a check's result inlined)."""
    out: dict[str, Any] = {"event": event.name}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, CheckResult):
            out.update({k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(value).items()})
            out["check_id"] = value.id
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out
