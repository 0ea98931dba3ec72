"""What a preflight check is and what it reports."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


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

# What needs the operator first: the order every front end lists finished checks in.
URGENCY = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2, Status.SKIPPED: 3}


def by_urgency(results: Iterable[CheckResult]) -> tuple[list[CheckResult], list[CheckResult]]:
    """(failures, then warnings, then passes; the skipped): how a front end lists finished checks, the
    skipped ones folded into one line. Within a status the given order is kept."""
    ordered = sorted(results, key=lambda r: URGENCY[r.status])
    return ([r for r in ordered if r.status is not Status.SKIPPED],
            [r for r in ordered if r.status is Status.SKIPPED])


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


class Scrubs(Protocol):
    """A probe that can take the secrets it holds out of a text (an exception's message)."""

    def scrub(self, text: str) -> str: ...


def guarded[P: Scrubs](probe: P, fn: Callable[[P, str, str, float], Awaitable[CheckResult]], check_id: str,
                       title: str) -> CheckFn:
    """`fn(probe, check_id, title, started)` as a check's `run`: a crash becomes a FAIL, scrubbed by the probe."""
    async def run() -> CheckResult:
        started = time.monotonic()
        try:
            return await fn(probe, check_id, title, started)
        except Exception as exc:  # a check reports, it never raises
            log.debug("check %s crashed", check_id, exc_info=True)
            return result(check_id, title, Status.FAIL,
                          f"check could not run: {type(exc).__name__}: {probe.scrub(str(exc))}",
                          "This is a bug in hfwizard's check; please report it.", started)
    return run
