"""The preflight's command-line front end: `--json` lines or a readable live view, and the exit code."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfwizard import quick_exit
from hfwizard.checks.base import Status
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished, to_json
from hfwizard.preflight import PreflightSettings, plan_preflight, run_checks
from hfwizard.profile import InstallProfile

MARKS = {Status.PASS: ("✓", "green"), Status.WARN: ("!", "yellow"), Status.FAIL: ("✗", "red"),
         Status.SKIPPED: ("–", "dim")}


def settings_from_cli(profile_path: Path, *, skip: Sequence[str] = (), timeout: float | None = None,
                      kubeconfig: Path | None = None, context: str | None = None) -> PreflightSettings:
    return PreflightSettings(skip=tuple(skip), timeout=timeout,
                             kubeconfig=str(kubeconfig) if kubeconfig else None, context=context,
                             base_dir=profile_path.expanduser().resolve().parent, strict_inputs=True,
                             kubeconfig_field="--kubeconfig / $KUBECONFIG" if kubeconfig else "target.kubeconfig")


def run_cli(profile: InstallProfile, settings: PreflightSettings, *, as_json: bool) -> int:
    """Run the preflight, print it, and return how many checks failed (warnings do not count).
    A skip entry naming no check raises BadInput (exit 2) before anything runs."""
    plan = plan_preflight(profile, settings)
    quick_exit.arm()  # nothing to tear down once the report is out
    return asyncio.run(_consume(plan.checks, plan.skipped, as_json))


async def _consume(checks: Any, skipped: dict[str, str], as_json: bool) -> int:
    failed = 0
    view = None if as_json else _LiveView(len(checks))
    try:
        async for event in run_checks(checks, skipped):
            if as_json:
                _emit(event)
            elif view is not None:
                view.show(event)
            if isinstance(event, PreflightFinished):
                failed = event.failed
    finally:
        if view is not None:
            view.close()
    return failed


def _emit(event: Event) -> None:
    sys.stdout.write(json.dumps(to_json(event), separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


class _LiveView:
    """One line per check as it finishes; a spinner says how many are still running (terminals only)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self.running: set[str] = set()
        self.total = total
        self.status = self.console.status("starting checks…") if self.console.is_terminal else None
        if self.status is not None:
            self.status.start()

    def show(self, event: Event) -> None:
        from rich.markup import escape

        if isinstance(event, CheckStarted):
            self.running.add(event.check_id)
        elif isinstance(event, CheckFinished):
            r = event.result
            self.running.discard(r.id)
            mark, colour = MARKS[r.status]
            took = f" [dim]({r.duration_s:.1f} s)[/]" if r.status is not Status.SKIPPED else ""
            self.console.print(f"[{colour}]{mark}[/] [bold]{escape(r.title)}[/] [dim]{escape(r.id)}[/]{took}")
            self.console.print(f"    {escape(r.finding)}",
                               style="dim" if r.status is Status.SKIPPED else None)
            if r.remedy and r.status in (Status.FAIL, Status.WARN):
                self.console.print(f"    [{colour}]→ {escape(r.remedy)}[/]")
        elif isinstance(event, PreflightFinished):
            self.close()
            colour = "red" if event.failed else ("yellow" if event.warned else "green")
            verdict = "preflight failed" if event.failed else "preflight passed"
            self.console.print(f"\n[bold {colour}]{verdict}[/]: {event.passed} passed, {event.warned} "
                               f"warning{'s' * (event.warned != 1)}, {event.failed} failed, "
                               f"{event.skipped} skipped")
        if self.status is not None and self.running:
            names = sorted(self.running)
            shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
            self.status.update(f"{len(names)} running: {shown}")

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
