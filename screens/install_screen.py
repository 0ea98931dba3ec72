"""Install: one row per step with its status and progress, the selected step's log, and Cancel (resumable)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, ListItem, ListView, ProgressBar, RichLog, Static

from hfwizard import adapters
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


class StepRow(ListItem):
    """One install step: status mark, title, and a bar filled from ready replicas."""

    def __init__(self, step_id: str, title: str) -> None:
        super().__init__(id=f"step-{slug(step_id).replace('/', '-')}", classes="step-row")
        self.step_id = step_id
        self.title = title
        self.lines: list[str] = []

    def compose(self) -> Iterable[Any]:
        with Horizontal():
            yield Static("…", classes="step-mark")
            yield Static(self.title, classes="step-title", markup=False)
            yield ProgressBar(total=None, show_eta=False, classes="step-bar")

    def mark(self, text: str) -> None:
        self.query_one(".step-mark", Static).update(text)


class InstallScreen(StepScreen):
    STEP = "install"
    TITLE = "Install"
    NEXT_LABEL = "Finish"
    HELP = """\
The install runs step by step: namespace, secrets, image pull secret, ClickHouse, the Highflame
modules, ingress, then a verification. Each bar fills as the step's pods become ready.
Up/Down selects a step; its log shows on the right.

**Cancel** stops after the current operation and leaves a resumable install: start `hfwizard`
again and choose Resume, or run `hfwizard resume`.
"""
    BINDINGS: ClassVar = [*StepScreen.BINDINGS, Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StepRow] = {}
        self.outcome: InstallFinished | None = None
        self.stopped: str | None = None

    def compose_body(self) -> Iterable[Any]:
        yield Static("Installing…", id="install-status", markup=False)
        with Horizontal(id="install-panes"):
            yield ListView(id="steps")
            yield RichLog(id="step-log", wrap=True, markup=False, highlight=False)
        yield Button("Cancel", id="cancel", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#back", Button).display = False
        self.run_install()

    @work(exclusive=True, group="install", exit_on_error=False)
    async def run_install(self) -> None:
        self.start_busy("install", "installing")
        try:
            # The engine resumes by itself when the install's journal shows an unfinished run.
            async for event in adapters.run_install(self.draft.profile(), self.draft.dir):
                self.on_install_event(event)
        except HfwizardError as exc:
            self.stopped = str(exc)
            self.query_one("#install-status", Static).update(f"✗ {exc}")
            self.revalidate()

    def on_install_event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            row = self.rows.get(event.step_id)
            if row is None:
                row = self.rows[event.step_id] = StepRow(event.step_id, event.title)
                self.query_one("#steps", ListView).append(row)
            row.call_after_refresh(row.mark, "▶")
        elif isinstance(event, StepProgress) and event.step_id in self.rows:
            bar = self.rows[event.step_id].query_one(ProgressBar)
            bar.update(total=max(event.total, 1), progress=event.done)
        elif isinstance(event, LogLine) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.lines.append(event.line)
            if self._selected() is row:
                self.query_one("#step-log", RichLog).write(event.line)
        elif isinstance(event, StepFinished) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.mark("✓" if event.status == "ok" else "=")
            bar = row.query_one(ProgressBar)
            bar.update(total=bar.total or 1, progress=bar.total or 1)
        elif isinstance(event, StepFailed) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.mark("✗")
            row.lines += [f"error: {event.error}", *(f"remedy: {event.remedy}" for _ in [0] if event.remedy)]
        elif isinstance(event, InstallFinished):
            self.outcome = event
            self.query_one("#install-status", Static).update(
                {"ok": "✓ Installed.", "interrupted": "Interrupted: resumable (`hfwizard resume`, or Resume "
                 "on the Welcome screen)."}.get(event.status, f"✗ Install failed: {event.message}"))
            self.query_one("#cancel", Button).disabled = True
            self.revalidate()

    def _selected(self) -> StepRow | None:
        item = self.query_one("#steps", ListView).highlighted_child
        return item if isinstance(item, StepRow) else None

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        log = self.query_one("#step-log", RichLog)
        log.clear()
        if isinstance(event.item, StepRow):
            for line in event.item.lines:
                log.write(line)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            event.stop()
            self.action_cancel()
            return
        super().on_button_pressed(event)

    def action_cancel(self) -> None:
        # Cancelling the worker cancels the engine's iterator; the engine leaves its journal resumable.
        self.workers.cancel_group(self, "install")
        self.stopped = "cancelled: the install is resumable (Resume on the Welcome screen, or `hfwizard resume`)"
        self.query_one("#install-status", Static).update(self.stopped)
        self.query_one("#cancel", Button).disabled = True
        self.revalidate()

    def extra_problems(self) -> list[str]:
        if self.outcome is not None and self.outcome.status == "ok":
            return []
        return [self.stopped] if self.stopped else ["the install is running"]

    def leave(self) -> None:
        pass  # Finish is offered only when the install is over: nothing to cancel
