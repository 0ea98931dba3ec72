"""Install: one row per step with its status and progress, the selected step's log, and Cancel (resumable)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, ListItem, ListView, Log, ProgressBar, Static

from hfwizard import operations
from hfwizard.errors import HfwizardError
from hfwizard.events import (
    Event,
    InstallFinished,
    LogLine,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
)

from .base import StepScreen, slug

# Lines each step keeps for its pane: a chatty Helm wait must not grow the wizard without bound. The
# whole log stays in the install's state dir; the pane is for watching.
LOG_RING = 2000
# How long the event loop may spend taking in a backlog of events before it lets keys and repaints in:
# the engine's queue hands over a backlog without ever suspending.
YIELD_EVERY_S = 0.01

MARKS = {"waiting": "·", "running": "▶", "done": "✓", "skipped": "=", "failed": "✗", "interrupted": "‖"}


class StepRow(ListItem):
    """One install step: status mark and title, then its status word and a bar filled from ready replicas."""

    def __init__(self, step_id: str, title: str) -> None:
        super().__init__(id=f"step-{slug(step_id)}", classes="step-row")
        self.step_id = step_id
        self.title = title
        self.status = "waiting"
        self.lines: deque[str] = deque(maxlen=LOG_RING)

    def compose(self) -> Iterable[Any]:
        with Horizontal():
            yield Static(MARKS["waiting"], classes="step-mark")
            yield Static(self.title, classes="step-title", markup=False)
        with Horizontal():
            yield Static("waiting", classes="step-status", markup=False)
            yield ProgressBar(total=None, show_eta=False, classes="step-bar")

    def set_status(self, status: str) -> None:
        self.status = status
        if self.is_mounted:
            self.query_one(".step-mark", Static).update(MARKS.get(status, "?"))
            self.query_one(".step-status", Static).update(status)


class InstallScreen(StepScreen):
    STEP = "install"
    TITLE = "Install"
    NEXT_LABEL = "Finish"
    HELP = """\
The install runs step by step: namespace, secrets, image pull secret, ClickHouse, the Highflame
modules, ingress, then a verification. Each bar fills as the step's pods become ready.
Up/Down selects a step; its log shows on the right.

**Cancel** (Escape) stops the running steps and leaves a resumable install: start `hfwizard`
again and choose Resume, or run `hfwizard resume`.
"""
    BINDINGS: ClassVar = [*StepScreen.BINDINGS, Binding("escape", "cancel", "Cancel")]

    class Flush(Message):
        """Buffered events wait to be shown. Pending ones collapse into one (toolong's `can_replace`), so a
        flood of log lines and progress costs one repaint per turn of the loop, not one per event."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, InstallScreen.Flush)

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StepRow] = {}
        self.outcome: InstallFinished | None = None
        self.stopped: str | None = None
        self.install_run: operations.InstallRun | None = None
        self._progress: dict[str, StepProgress] = {}  # the latest per step: older ones are stale
        self._backlog: deque[str] = deque(maxlen=LOG_RING)  # new lines of the selected step
        self._flush_posted = False

    def compose_body(self) -> Iterable[Any]:
        yield Static("Installing…", id="install-status", markup=False)
        with Horizontal(id="install-panes"):
            rows = [StepRow(sid, title) for sid, title in operations.install_steps(self.draft.profile())]
            self.rows = {row.step_id: row for row in rows}
            yield ListView(*rows, id="steps")
            yield Log(id="step-log", max_lines=LOG_RING)
        yield Button("Cancel", id="cancel", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#back", Button).display = False
        self.query_one("#steps", ListView).focus()
        self.run_install()

    @work(exclusive=True, group="install", exit_on_error=False)
    async def run_install(self) -> None:
        self.start_busy("install", "installing")
        # The engine resumes by itself when the install's journal shows an unfinished run.
        self.install_run = operations.InstallRun(self.draft.profile(), self.draft.dir)
        try:
            paused = time.monotonic()
            async for event in self.install_run.events():
                self.take(event)
                if time.monotonic() - paused > YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    paused = time.monotonic()
        except HfwizardError as exc:
            self.stopped = str(exc)
            self.query_one("#install-status", Static).update(f"✗ {exc}")
            self.query_one("#cancel", Button).disabled = True
            self.revalidate()

    # ---- events ----------------------------------------------------------------------------------

    def take(self, event: Event) -> None:
        """Take one engine event: log lines and progress are buffered for the next Flush, the rest shown."""
        if isinstance(event, LogLine):
            row = self.rows.get(event.step_id)
            if row is None:
                return  # not a step (the install lock's notes): the install's log file has it
            row.lines.append(event.line)
            if self._selected() is row:
                self._backlog.append(event.line)
                self._post_flush()
        elif isinstance(event, StepProgress):
            self._progress[event.step_id] = event
            self._post_flush()
        else:
            self.on_install_event(event)

    def _post_flush(self) -> None:
        if not self._flush_posted:
            self._flush_posted = True
            self.post_message(self.Flush())

    def on_install_screen_flush(self, message: Flush) -> None:
        self._flush_posted = False
        for step_id, progress in self._progress.items():
            row = self.rows.get(step_id)
            if row is not None and row.is_mounted:
                row.query_one(ProgressBar).update(total=max(progress.total, 1), progress=progress.done)
        self._progress.clear()
        if self._backlog:
            self.query_one("#step-log", Log).write_lines(self._backlog)
            self._backlog.clear()

    def on_install_event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            row = self._row(event.step_id, event.title)
            row.set_status("running")
            selected = self._selected()
            if selected is None or selected.status != "running":
                # Follow the install until the operator picks a running step to watch.
                self.query_one("#steps", ListView).index = list(self.rows).index(event.step_id)
        elif isinstance(event, StepFinished) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.set_status("done" if event.status == "ok" else event.status)
            if event.detail:
                self.take(LogLine(event.step_id, event.detail))
            if row.is_mounted:
                bar = row.query_one(ProgressBar)
                bar.update(total=bar.total or 1, progress=bar.total or 1)
        elif isinstance(event, StepFailed) and event.step_id in self.rows:
            self.rows[event.step_id].set_status("interrupted" if event.interrupted else "failed")
            for line in (f"error: {event.error}", *([f"remedy: {event.remedy}"] if event.remedy else []),
                         *event.pod_events):
                self.take(LogLine(event.step_id, line, level="error"))
        elif isinstance(event, InstallFinished):
            self.outcome = event
            self.query_one("#install-status", Static).update(
                {"ok": "✓ Installed.", "interrupted": "‖ Interrupted: resumable (`hfwizard resume`, or Resume "
                 "on the Welcome screen)."}.get(event.status, f"✗ Install {event.status}: {event.message}"))
            if event.status == "interrupted":
                self.stopped = "the install is interrupted and resumable: quit, then Resume it"
            elif event.status != "ok":
                self.stopped = event.message.splitlines()[0] if event.message else f"the install {event.status}"
            self.query_one("#cancel", Button).disabled = True
            self.revalidate()

    def _row(self, step_id: str, title: str) -> StepRow:
        row = self.rows.get(step_id)
        if row is None:  # a step the plan did not list up front (a changed engine): show it anyway
            row = self.rows[step_id] = StepRow(step_id, title)
            self.query_one("#steps", ListView).append(row)
        return row

    def _selected(self) -> StepRow | None:
        item = self.query_one("#steps", ListView).highlighted_child
        return item if isinstance(item, StepRow) else None

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        log = self.query_one("#step-log", Log)
        log.clear()
        self._backlog.clear()
        if isinstance(event.item, StepRow):
            log.border_title = event.item.step_id
            log.write_lines(event.item.lines)

    # ---- cancel and leave ------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            event.stop()
            self.action_cancel()
            return
        super().on_button_pressed(event)

    def action_cancel(self) -> None:
        if self.outcome is not None or self.install_run is None:
            return
        # The engine stops its running steps and journals them as interrupted; its last event
        # (InstallFinished, exit 3) still arrives through the worker, which keeps reading.
        self.install_run.cancel()
        self.query_one("#install-status", Static).update("Cancelling: stopping the running steps…")
        self.query_one("#cancel", Button).disabled = True

    def extra_problems(self) -> list[str]:
        if self.outcome is not None and self.outcome.status == "ok":
            return []
        return [self.stopped] if self.stopped else ["the install is running"]

    def leave(self) -> None:
        pass  # Finish is offered only when the install is over: nothing to cancel
