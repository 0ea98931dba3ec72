"""Ask before anything that cannot be undone: a question, what it does, and a safe default (Cancel)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmModal(ModalScreen[bool]):
    """Dismissed with True only by the `yes` button; Escape, Cancel and a stray Enter on focus say no."""

    CSS_PATH = Path(__file__).parent / "confirm_modal.tcss"
    BINDINGS: ClassVar = [Binding("escape", "no", "Cancel")]

    def __init__(self, title: str, text: str, yes: str, *, no: str = "Cancel", danger: bool = True) -> None:
        super().__init__(id="confirm-modal")
        self._title, self._text, self._yes, self._no, self._danger = title, text, yes, no, danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-panel"):
            yield Static(self._title, id="confirm-title", markup=False)
            with VerticalScroll(id="confirm-body"):
                yield Static(self._text, id="confirm-text", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self._no, id="confirm-no")
                yield Button(self._yes, id="confirm-yes", variant="error" if self._danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # the safe answer is the one Enter gives

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_no(self) -> None:
        self.dismiss(False)
