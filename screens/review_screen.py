"""Review: the whole profile, the Helm values that change since the last install, and Export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from textual.widgets import Button, Static

from hfwizard import operations
from hfwizard.profile_io import dump_profile

from .base import StepScreen


class ReviewScreen(StepScreen):
    STEP = "review"
    TITLE = "Review"
    NEXT_LABEL = "Preflight"
    HELP = """\
Everything the install will use, as the profile file it is saved as (secrets appear only as
references). Below it, the Helm values that differ from the last finished install of this name
(all of them for a first install).

**Export** writes the profile to a file for a headless `hfwizard install --profile FILE`.
**Preflight** checks every requirement against the real cluster and services; nothing is changed
until the install starts.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Button("Export…", id="export")
        try:
            profile = self.draft.profile()
        except ValidationError:
            yield Static("The answers are not complete: fix the problems listed below (Back to reach "
                         "their step).", classes="intro")
            return
        yield Static("Profile", classes="section")
        yield Static(dump_profile(profile), id="profile-yaml", markup=False)
        yield Static("Helm values changed since the last install", classes="section")
        try:
            diff = operations.values_diff(operations.last_installed_profile(self.draft.dir), profile)
        except Exception as exc:  # the diff is information only: never stop the review on it
            diff = [f"(could not compute: {type(exc).__name__})"]
        yield Static("\n".join(diff) or "(no changes)", id="values-diff", markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            event.stop()
            self.export()
            return
        super().on_button_pressed(event)

    def export(self) -> None:
        from .export_modal import ExportModal

        try:
            profile = self.draft.profile()
        except ValidationError:
            self.notify("fix the problems first", severity="error")
            return

        def done(path: Any) -> None:
            if path is not None:
                self.notify(f"wrote {path}")

        self.app.push_screen(ExportModal(profile, f"{self.draft.name}.yaml"), done)

    def action_next(self) -> None:
        if not self.query_one("#next", Button).disabled:
            self.draft.finish()  # the saved profile is what preflight, install and resume read
        super().action_next()
