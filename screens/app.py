"""The wizard application: owns the draft and the order of the steps, and switches between them."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from hfwizard.draft import STEPS, Draft

if TYPE_CHECKING:
    from .install_screen import InstallScreen

# Set by the start-up benchmark only: the app writes CLOCK_MONOTONIC to this file once the Welcome screen
# is mounted and painted, then exits.
READY_MARKER_ENV = "HFWIZARD_BENCH_READY_MARKER"

# Every screen in walking order; the question steps come from hfwizard.draft, their questions from
# hfwizard.questions, so plain mode asks the same.
ORDER: tuple[str, ...] = ("welcome", *STEPS, "preflight", "install", "done")


_MODULES: dict[str, tuple[str, str]] = {
    "welcome": ("welcome_screen", "WelcomeScreen"),
    "target": ("target_screen", "TargetScreen"),
    "credentials": ("credentials_screen", "CredentialsScreen"),
    "cluster": ("cluster_screen", "ClusterScreen"),
    "data": ("data_screen", "DataScreen"),
    "sizing": ("sizing_screen", "SizingScreen"),
    "modules": ("modules_screen", "ModulesScreen"),
    "clerk": ("clerk_screen", "ClerkScreen"),
    "ingress": ("ingress_screen", "IngressScreen"),
    "review": ("review_screen", "ReviewScreen"),
    "preflight": ("preflight_screen", "PreflightScreen"),
    "install": ("install_screen", "InstallScreen"),
    "done": ("done_screen", "DoneScreen"),
}


def _screen_for(step: str) -> Screen[None]:
    # Each screen's module is imported when first shown: the Welcome screen pays only for itself.
    module, cls = _MODULES[step]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)()


class WizardApp(App[int]):
    """`hfwizard` with no command: Welcome, the question steps, preflight, install, done."""

    TITLE = "Highflame installer"
    CSS_PATH = Path(__file__).parent / "app.tcss"
    BINDINGS: ClassVar = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "interrupt", "Cancel install", show=False),
    ]

    def __init__(self, state_root: Path) -> None:
        super().__init__()
        self.state_root = state_root
        self.draft: Draft | None = None
        self.exit_code = 0
        self._showing: str | None = "welcome"  # the step last asked for (see _stale)
        self.focus_path: str | None = None  # the field a step focuses when it opens (Edit answer)
        self.back_to_review = False  # an answer is being fixed after a failure: Next returns to Review

    def on_mount(self) -> None:
        self.push_screen(_screen_for("welcome"))

    def on_ready(self) -> None:
        # Only benchmarks/bench_wizard.py sets this: it times process start to the first screen.
        marker = os.environ.get(READY_MARKER_ENV)
        if marker:
            self.call_after_refresh(self._first_screen_ready, marker)

    def _first_screen_ready(self, marker: str) -> None:
        if self.screen.id != "welcome-screen" or not self.screen.is_mounted:
            self.call_after_refresh(self._first_screen_ready, marker)
            return
        Path(marker).write_text(f"{time.monotonic()}\n", "utf-8")
        self.exit(0)

    def open_draft(self, name: str, *, fresh: bool = False) -> Draft:
        self.draft = Draft.load(self.state_root, name)
        if fresh:
            self.draft.reset()
        return self.draft

    def show(self, step: str) -> None:
        if self.draft is not None and step in (*STEPS, "preflight"):
            self.draft.save_step(step)  # a wizard killed here comes back here
        self._showing = step
        self.switch_screen(_screen_for(step))

    def _stale(self, current: str) -> bool:
        # A second Next (or Back) pressed before the screen changed comes from the screen being left:
        # acting on it would push the next screen twice.
        return self._showing is not None and current != self._showing

    def next_step(self, current: str) -> None:
        if self._stale(current):
            return
        self.show(ORDER[min(ORDER.index(current) + 1, len(ORDER) - 1)])

    def prev_step(self, current: str) -> None:
        if self._stale(current):
            return
        i = ORDER.index(current)
        # From Preflight, Install or Done, Back goes to Review: those screens have nothing to go back to.
        target = "review" if current in ("preflight", "install", "done") else ORDER[max(i - 1, 0)]
        self.show(target)

    # ---- recovery: from a failure back to the answer at fault ---------------------------------------

    def edit_answer(self, path: str | None) -> None:
        """Open the step that asks `path` (Review when no answer is named) with that field focused;
        until the install runs again, that step's Next goes straight back to Review."""
        from hfwizard.draft import OWNED
        from hfwizard.questions import all_questions

        step = "review"
        if path is not None:
            asked = next((q.step for q in all_questions() if q.path == path), None)
            step = asked or next((s for s, prefixes in OWNED.items() if s != "review" and any(
                path == p or path.startswith(p + ".") for p in prefixes if not p.startswith("="))), "review")
        self.focus_path = path
        self.edit_step(step)

    def edit_step(self, step: str) -> None:
        """Open `step` to change an answer; its Next comes back to Review (Review's Edit links too)."""
        self.back_to_review = step != "review"
        self.show(step)

    # ---- leaving while an install runs ------------------------------------------------------------

    def _running_install(self) -> Any:
        from .install_screen import InstallScreen

        screen = self.screen
        return screen if isinstance(screen, InstallScreen) and screen.running else None

    async def action_quit(self) -> None:
        self._quit_or_ask(
            "Quit during the install?",
            "The running steps are stopped and journalled; nothing is lost. Start hfwizard again and choose "
            "Resume, or run `hfwizard resume`, to carry on from where it stopped.",
            "Cancel install and quit", lambda running: running.cancel_then_quit())

    def action_interrupt(self) -> None:
        """Ctrl+C: during an install, offer to cancel it (resumable); elsewhere, quit (answers are saved)."""
        self._quit_or_ask(
            "Cancel the install?",
            "The running steps are stopped and journalled, and the install can be resumed from where it "
            "stopped (Resume on this screen, or `hfwizard resume`).",
            "Cancel install", lambda running: running.action_cancel())

    def _quit_or_ask(self, title: str, text: str, yes: str, on_yes: Callable[[InstallScreen], None]) -> None:
        """No install running: quit (the answers are saved). One running: ask first, Keep installing focused."""
        running = self._running_install()
        if running is None:
            self.exit(self.exit_code)
            return
        from .confirm_modal import ConfirmModal

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                on_yes(running)

        self.push_screen(ConfirmModal(title, text, yes, no="Keep installing"), answered)

    def action_help(self) -> None:
        from .help_modal import HelpModal

        if isinstance(self.screen, HelpModal):
            self.pop_screen()
            return
        text = getattr(self.screen, "HELP", "") or "No help for this screen."
        self.push_screen(HelpModal(getattr(self.screen, "TITLE", "Help"), text))
