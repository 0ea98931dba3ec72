"""Install: one row per step, what each running step waits for, the selected step's log, and recovery in place."""

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
from textual.widgets import Button, Input, ListItem, ListView, ProgressBar, RichLog, Static

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
    """One install step: status mark and title, then its status word and a bar (shown only while it runs)."""

    def __init__(self, step_id: str, title: str) -> None:
        super().__init__(id=f"step-{slug(step_id)}", classes="step-row")
        self.step_id = step_id
        self.title = title
        self.status = "waiting"
        self.lines: deque[LogLine] = deque(maxlen=LOG_RING)
        self.started = 0.0
        self.advanced = 0.0  # the last time the step said anything: the stall clock runs from here
        self.waiting_for = ""

    def compose(self) -> Iterable[Any]:
        with Horizontal():
            yield Static(MARKS["waiting"], classes="step-mark")
            yield Static(self.title, classes="step-title", markup=False)
        with Horizontal():
            yield Static("waiting", classes="step-status", markup=False)
            bar = ProgressBar(total=None, show_eta=False, classes="step-bar")
            bar.display = False  # only a running step animates
            yield bar

    def set_status(self, status: str) -> None:
        self.status = status
        if status == "running":
            self.started = self.advanced = time.monotonic()
        if self.is_mounted:
            self.query_one(".step-mark", Static).update(MARKS.get(status, "?"))
            self.query_one(".step-status", Static).update(status)
            self.query_one(ProgressBar).display = status in ("running", "done")


class InstallScreen(StepScreen):
    STEP = "install"
    TITLE = "Install"
    NEXT_LABEL = "Finish"
    HELP = """\
The install runs step by step: namespace, secrets, image pull secret, ClickHouse, the Highflame
modules, ingress, then a verification. Each bar fills as the step's pods become ready; the line
above the steps says what each running step waits for and when it would count as stalled.
Up/Down selects a step; its log shows on the right (`d` shows Helm's debug lines, `/` searches).

**Cancel** (Escape or Ctrl+C) stops the running steps and leaves a resumable install.
When a step fails, the banner says why and what to do: **Edit answer** opens the question at
fault, **Retry with changes** shows what your changes do and carries on with them.
"""
    BINDINGS: ClassVar = [*StepScreen.BINDINGS, Binding("escape", "cancel", "Cancel"),
                          Binding("d", "toggle_debug", "Debug lines"), Binding("slash", "search", "Search"),
                          Binding("e", "edit_answer", "Edit answer"), Binding("r", "retry", "Retry")]

    class Flush(Message):
        """Buffered events wait to be shown. Pending ones collapse into one (toolong's `can_replace`), so a
        flood of log lines and progress costs one repaint per turn of the loop, not one per event."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, InstallScreen.Flush)

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StepRow] = {}
        self.outcome: InstallFinished | None = None
        self.failure: StepFailed | None = None
        self.stopped: str | None = None
        self.install_run: operations.InstallRun | None = None
        self.show_debug = False
        self.search = ""
        self.quit_when_stopped = False
        self._progress: dict[str, StepProgress] = {}  # the latest per step: older ones are stale
        self._backlog: deque[LogLine] = deque(maxlen=LOG_RING)  # new lines of the selected step
        self._flush_posted = False

    @property
    def running(self) -> bool:
        return self.install_run is not None and self.outcome is None and self.stopped is None

    def compose_body(self) -> Iterable[Any]:
        yield Static("Installing…", id="install-status", markup=False)
        yield Static("", id="banner", markup=False)
        with Horizontal(id="recovery"):
            yield Button("Edit answer", id="edit-answer")
            yield Button("Retry with changes", id="retry", variant="primary")
            yield Button("Resume", id="resume-install", variant="primary")
        yield Static("", id="waiting", markup=False)
        with Horizontal(id="install-panes"):
            rows = [StepRow(sid, title) for sid, title in operations.install_steps(self.draft.profile())]
            self.rows = {row.step_id: row for row in rows}
            yield ListView(*rows, id="steps")
            # min_width: wrap at the pane's width (RichLog's default of 78 would cut lines in a narrow pane)
            yield RichLog(id="step-log", max_lines=LOG_RING, wrap=True, markup=False, highlight=False, min_width=10)
        search = Input(placeholder="search the log (Enter; empty clears)", id="log-search")
        search.display = False
        yield search
        yield Button("Cancel", id="cancel", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#back", Button).display = False
        self.query_one("#banner").display = False
        self.query_one("#recovery").display = False
        self.query_one("#steps", ListView).focus()
        self.set_interval(1.0, self.show_waiting)
        self.start(ask_first=True)

    # ---- starting, retrying ----------------------------------------------------------------------

    def start(self, *, ask_first: bool = False) -> None:
        """Run (or resume) the install. When the answers differ from an unfinished install's, show the
        difference and carry on with them only when the operator says so (the engine's replan)."""
        changes = operations.pending_changes(self.draft.profile(), self.draft.dir)
        if not changes:
            self.run_install(replan=False)
            return
        from .confirm_modal import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_install(replan=True)
            else:
                self.stopped = "the answers differ from the unfinished install's"
                self.show_banner("The answers differ from the unfinished install's. Retry with changes to "
                                 "carry on with them, or Edit answer to put them back.")

        self.app.push_screen(ConfirmModal(
            "Retry with these changes?",
            "The install stopped unfinished with other answers. Carrying on applies these changes:\n"
            + "\n".join(f"  • {c}" for c in changes), "Retry with changes", danger=False), answered)

    @work(exclusive=True, group="install", exit_on_error=False)
    async def run_install(self, replan: bool = False) -> None:
        self.start_busy("install", "installing")
        self._reset_view()
        # The engine resumes by itself when the install's journal shows an unfinished run.
        self.install_run = operations.InstallRun(self.draft.profile(), self.draft.dir, replan=replan)
        try:
            paused = time.monotonic()
            async for event in self.install_run.events():
                self.take(event)
                if time.monotonic() - paused > YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    paused = time.monotonic()
        except HfwizardError as exc:
            self.stopped = str(exc)
            self.show_banner(f"✗ {exc}" + (f"\n→ {exc.remedy}" if getattr(exc, "remedy", None) else ""))
            self.revalidate()

    def _reset_view(self) -> None:
        self.outcome = self.failure = None
        self.stopped = None
        self.query_one("#banner").display = False
        self.query_one("#recovery").display = False
        self.query_one("#cancel", Button).display = True
        self.query_one("#cancel", Button).disabled = False
        self.query_one("#install-status", Static).update("Installing…")
        self.revalidate()

    # ---- events ----------------------------------------------------------------------------------

    def take(self, event: Event) -> None:
        """Take one engine event: log lines and progress are buffered for the next Flush, the rest shown."""
        if isinstance(event, LogLine):
            row = self.rows.get(event.step_id)
            if row is None:
                return  # not a step (the install lock's notes): the install's log file has it
            row.lines.append(event)
            if not operations.is_debug(event):
                row.advanced = time.monotonic()
            if self._selected() is row:
                self._backlog.append(event)
                self._post_flush()
        elif isinstance(event, StepProgress):
            self._progress[event.step_id] = event
            row = self.rows.get(event.step_id)
            if row is not None:
                row.advanced = time.monotonic()
                row.waiting_for = getattr(event, "message", "") or row.waiting_for
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
            self._write(self._backlog)
            self._backlog.clear()

    def _shown(self, line: LogLine) -> bool:
        if operations.is_debug(line) and not self.show_debug:
            return False
        return not self.search or self.search.lower() in line.line.lower()

    def _write(self, lines: Iterable[LogLine]) -> None:
        log = self.query_one("#step-log", RichLog)
        for line in lines:
            if self._shown(line):
                log.write(line.line)

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
            if not event.interrupted and self.failure is None:
                self.failure = event
            for line in (f"error: {event.error}", *([f"remedy: {event.remedy}"] if event.remedy else []),
                         *event.pod_events):
                self.take(LogLine(event.step_id, line, level="error"))
        elif isinstance(event, InstallFinished):
            self.finished(event)

    def finished(self, event: InstallFinished) -> None:
        self.outcome = event
        for row in self.rows.values():
            if row.status in ("waiting", "running"):
                row.set_status("waiting")  # stopped: nothing runs, nothing animates
        self.query_one("#cancel", Button).display = False
        self.query_one("#waiting", Static).update("")
        status = self.query_one("#install-status", Static)
        if event.status == "ok":
            status.update("✓ Installed.")
        elif event.status == "interrupted":
            status.update("‖ Interrupted: resumable (Resume below, `hfwizard resume`, or Resume on the "
                          "Welcome screen).")
            self.stopped = "the install is interrupted and resumable"
            self.show_banner("‖ The install was interrupted; nothing is lost. Resume carries on from where it "
                             "stopped.", interrupted=True)
        else:
            status.update(f"✗ Install {event.status}.")
            self.stopped = event.message.splitlines()[0] if event.message else f"the install {event.status}"
            self.show_banner(self.failure_text(event))
        self.revalidate()
        if self.quit_when_stopped:
            self.app.exit(int(event.exit_code), return_code=int(event.exit_code))

    def failure_text(self, event: InstallFinished) -> str:
        """The whole error and remedy of the failed step (or the run's message), for the banner."""
        f = self.failure
        if f is None:
            return f"✗ {event.message or 'the install ' + event.status}"
        lines = [f"✗ {f.step_id}: {f.error}"]
        if f.remedy:
            lines.append(f"→ {f.remedy}")
        lines += [f"  {e}" for e in f.pod_events[:5]]
        return "\n".join(lines)

    def show_banner(self, text: str, *, interrupted: bool = False) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.display = True
        banner.set_class(not interrupted, "failed")
        self.query_one("#recovery").display = True
        self.refresh_bindings()
        self.query_one("#resume-install").display = interrupted
        self.query_one("#retry").display = not interrupted
        self.query_one("#edit-answer").display = not interrupted

    def show_waiting(self) -> None:
        """One line per running step: what it waits for, for how long, and when it would count as stalled."""
        if not self.running:
            return
        stall = self.draft.profile().install.stall_seconds
        now = time.monotonic()
        lines = []
        for row in self.rows.values():
            if row.status == "running":
                left = max(0, int(stall - (now - row.advanced)))
                what = row.waiting_for or "its objects to become ready"
                lines.append(f"▶ {row.step_id}: waiting for {what} · {_clock(now - row.started)} · "
                             f"stalls in {_clock(left)}")
        self.query_one("#waiting", Static).update("\n".join(lines[:3]))

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
        self._refill()

    def _refill(self) -> None:
        log = self.query_one("#step-log", RichLog)
        log.clear()
        self._backlog.clear()
        row = self._selected()
        if row is not None:
            log.border_title = row.step_id + (" · debug on" if self.show_debug else "") + (
                f" · /{self.search}" if self.search else "")
            self._write(row.lines)

    def action_toggle_debug(self) -> None:
        self.show_debug = not self.show_debug
        self._refill()

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            self.search = event.value.strip()
            event.input.display = False
            self.query_one("#steps", ListView).focus()
            self._refill()
            return
        super().on_input_submitted(event)

    # ---- recovery, cancel and leave --------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"cancel": self.action_cancel, "retry": self.start, "resume-install": self.start,
                   "edit-answer": self.edit_answer}
        if event.button.id in actions:
            event.stop()
            actions[event.button.id]()
            return
        super().on_button_pressed(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The recovery keys show in the footer (and act) only while the banner offers them.
        if action in ("edit_answer", "retry"):
            return self.query_one("#recovery").display and not self.running
        return True

    def action_edit_answer(self) -> None:
        self.edit_answer()

    def action_retry(self) -> None:
        self.start()

    def edit_answer(self) -> None:
        """Open the question the failure points at; its step's Next then comes back by way of Review."""
        f = self.failure
        texts = (f.error, f.remedy or "", *f.pod_events) if f is not None else (self.stopped or "",)
        self.wizard.edit_answer(operations.answer_at_fault(*texts))

    def action_cancel(self) -> None:
        if not self.running:
            return
        assert self.install_run is not None
        # The engine stops its running steps and journals them as interrupted; its last event
        # (InstallFinished, exit 3) still arrives through the worker, which keeps reading.
        self.install_run.cancel()
        self.query_one("#install-status", Static).update("Cancelling: stopping the running steps…")
        self.query_one("#cancel", Button).disabled = True

    def cancel_then_quit(self) -> None:
        self.quit_when_stopped = True
        self.action_cancel()

    def extra_problems(self) -> list[str]:
        return []  # what holds Finish is said by the status line and the banner, not as an error

    def revalidate(self) -> None:
        super().revalidate()
        self.query_one("#next", Button).disabled = not (self.outcome is not None and self.outcome.status == "ok")

    def leave(self) -> None:
        pass  # Finish is offered only when the install is over: nothing to cancel


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"
