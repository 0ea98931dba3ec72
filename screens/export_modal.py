"""Export: ask where to write the profile (secret references only), then write it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from hfwizard.errors import HfwizardError
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import save_profile


class ExportModal(ModalScreen[Path | None]):
    CSS_PATH = Path(__file__).parent / "export_modal.tcss"
    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, profile: InstallProfile, default: str, folder: Path | None = None) -> None:
        super().__init__(id="export-modal")
        self.profile = profile
        # An absolute path, so the operator sees where the file goes (not "the current directory").
        self.default = str(((folder or Path.cwd()) / default).expanduser().resolve())

    def compose(self) -> ComposeResult:
        with Vertical(id="export-panel"):
            yield Static("Export the profile", id="export-title")
            yield Label("Secret fields are written as references only. File:")
            yield Input(self.default, id="export-path")
            yield Static("", id="export-where", markup=False)
            yield Static("", id="export-error", classes="error", markup=False)
            with Horizontal(id="export-buttons"):
                yield Button("Cancel", id="export-cancel")
                yield Button("Write", id="export-write", variant="primary")

    def on_mount(self) -> None:
        self._where(self.default)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._where(event.value)

    def _where(self, text: str) -> None:
        target = Path(text.strip() or ".").expanduser().resolve()
        self.query_one("#export-where", Static).update(
            f"→ {target}\nreplay it headless: hfwizard install --profile {target} --yes")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export-write":
            self.write()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def write(self) -> None:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            self.query_one("#export-error", Static).update("✗ give a file name")
            return
        try:
            path = save_profile(Path(text).expanduser().resolve(), self.profile)
        except (OSError, HfwizardError) as exc:
            self.query_one("#export-error", Static).update(f"✗ cannot write {text}: {exc}")
            return
        self.dismiss(path)
