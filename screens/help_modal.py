"""F1 help: a panel over the current screen explaining its questions."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown, Static


class HelpModal(ModalScreen[None]):
    CSS_PATH = Path(__file__).parent / "help_modal.tcss"
    BINDINGS: ClassVar = [Binding("escape", "close", "Close"), Binding("f1", "close", "Close", show=False)]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(id="help-modal")
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="help-panel"):
            yield Static(f"Help · {self._title}", id="help-title", markup=False)
            with VerticalScroll(id="help-body"):
                yield Markdown(self._text)
            yield Button("Close (Esc)", id="help-close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()
