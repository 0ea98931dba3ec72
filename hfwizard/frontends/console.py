"""The one Rich renderer: checks as they finish (a spinner over the running ones), steps as progress bars."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hfwizard.checks.base import CheckResult, Status
from hfwizard.events import (
    CheckFinished,
    CheckStarted,
    Event,
    InstallFinished,
    LogLine,
    PreflightFinished,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
)

MARKS = {Status.PASS: ("✓", "green"), Status.WARN: ("!", "yellow"), Status.FAIL: ("✗", "red"),
         Status.SKIPPED: ("–", "dim")}


class RichView:
    """A readable live view for a terminal (and plain lines when output is not one).

    Preflight: one line per check as it finishes, the remedy under failures and warnings, and a spinner
    naming the checks still running. Install: one progress row per step, filled from ready replicas;
    failures, warnings and the outcome as lines.
    """

    def __init__(self) -> None:
        self.console = Console(highlight=False)
        self.running: set[str] = set()
        self.status: Any = None
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}

    # ---- preflight -------------------------------------------------------------------------------

    def _spin(self) -> None:
        if not self.console.is_terminal:
            return
        if self.status is None and self.running:
            self.status = self.console.status("starting checks…")
            self.status.start()
        if self.status is not None and self.running:
            names = sorted(self.running)
            shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
            self.status.update(f"{len(names)} running: {shown}")

    def _stop_spinner(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def _check(self, r: CheckResult) -> None:
        self.running.discard(r.id)
        mark, colour = MARKS[r.status]
        took = f" [dim]({r.duration_s:.1f} s)[/]" if r.status is not Status.SKIPPED else ""
        self.console.print(f"[{colour}]{mark}[/] [bold]{escape(r.title)}[/] [dim]{escape(r.id)}[/]{took}")
        self.console.print(f"    {escape(r.finding)}", style="dim" if r.status is Status.SKIPPED else None)
        if r.remedy and r.status in (Status.FAIL, Status.WARN):
            self.console.print(f"    [{colour}]→ {escape(r.remedy)}[/]")

    def _preflight_done(self, event: PreflightFinished) -> None:
        self._stop_spinner()
        colour = "red" if event.failed else ("yellow" if event.warned else "green")
        verdict = "preflight failed" if event.failed else "preflight passed"
        self.console.print(f"\n[bold {colour}]{verdict}[/]: {event.passed} passed, {event.warned} "
                           f"warning{'s' * (event.warned != 1)}, {event.failed} failed, {event.skipped} skipped")

    # ---- install ---------------------------------------------------------------------------------

    def _task(self, step_id: str, title: str | None = None) -> Any:
        if self.progress is None:
            self.progress = Progress(TextColumn("{task.fields[status]:>9}"), TextColumn("{task.description:<34}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=self.console, transient=False)
            self.progress.start()
        if step_id not in self.tasks:
            self.tasks[step_id] = self.progress.add_task(title or step_id, total=None, status="waiting")
        return self.tasks[step_id]

    def _step(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            t = self._task(event.step_id)
            self._bars().update(t, status="running", total=None)
        elif isinstance(event, StepProgress):
            self._bars().update(self._task(event.step_id), total=max(event.total, 1), completed=event.done)
        elif isinstance(event, StepFinished):
            t = self._task(event.step_id)
            total = self._bars().tasks[t].total or 1
            self._bars().update(t, status="done" if event.status == "ok" else event.status,
                                total=total, completed=total)
        elif isinstance(event, StepFailed):
            t = self._task(event.step_id)
            self._bars().update(t, status="interrupted" if event.interrupted else "FAILED")
            self.console.print(f"{event.step_id}: {event.error}", style="red", markup=False)
            if event.remedy:
                self.console.print(f"  -> {event.remedy}", markup=False)
            for line in event.pod_events:
                self.console.print(f"  {line}", markup=False)

    def _bars(self) -> Progress:
        assert self.progress is not None
        return self.progress

    # ---- the stream --------------------------------------------------------------------------------

    def show(self, event: Event) -> None:
        if isinstance(event, CheckStarted):
            self.running.add(event.check_id)
        elif isinstance(event, CheckFinished):
            self._check(event.result)
        elif isinstance(event, PreflightFinished):
            self._preflight_done(event)
            return
        elif isinstance(event, LogLine):
            if event.level in ("warning", "error"):
                self.console.print(f"{event.step_id}: {event.line}", markup=False)
        elif isinstance(event, InstallFinished):
            self.close()
            style = "bold green" if event.exit_code == 0 else "bold red"
            self.console.print(f"{event.status}: {event.message}", style=style, markup=False)
        else:
            self._step(event)
        self._spin()

    def note(self, text: str, error: bool = False) -> None:
        self.console.print(text, style="bold red" if error else "bold", markup=False)

    def close(self) -> None:
        self._stop_spinner()
        if self.progress is not None:
            self.progress.stop()
