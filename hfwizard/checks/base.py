"""What a preflight check is and what it reports."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: a one-line finding, and what to do about it when it did not pass.

    Findings and remedies never contain a secret value.
    """

    id: str  # reads like a path: "postgres/version", "redis/cluster-state"
    title: str
    status: Status
    finding: str
    remedy: str | None = None
    duration_s: float = 0.0
    details: dict[str, str | int | float | bool | None] = field(default_factory=dict)


CheckFn = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True)
class Check:
    """A named, bounded unit of preflight work. `run` returns a CheckResult and never raises."""

    id: str
    title: str
    run: CheckFn
    timeout_s: float = 10.0


def result(check_id: str, title: str, status: Status, finding: str, remedy: str | None = None,
           started: float | None = None, **details: str | int | float | bool | None) -> CheckResult:
    """Build a CheckResult, timing it from `started` (a time.monotonic() value) when given."""
    duration = time.monotonic() - started if started is not None else 0.0
    return CheckResult(check_id, title, status, finding, remedy, round(duration, 3), dict(details))
