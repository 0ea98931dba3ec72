"""Modules: the seven platform modules, each on or off, with its replica count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.containers import Horizontal
from textual.widgets import Checkbox, Label, Static

from hfwizard.profile import MODULE_TITLES

from .base import ErrorLine, FieldInput, StepScreen, slug, to_text


class ModulesScreen(StepScreen):
    STEP = "modules"
    TITLE = "Modules"
    HELP = """\
The platform's seven modules. Space toggles a module on or off; the number is its replica count
(the starting count when autoscaling is on). The sizing preset set autoscaling and disruption budgets;
a replica count must leave the disruption budget room to evict a pod during node drains.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Static("Which modules to run, and how many replicas of each:", classes="intro")
        for name, title in MODULE_TITLES.items():
            base = f"modules.{name.value}"
            with Horizontal(classes="module-line"):
                yield Checkbox(title, bool(self.value(f"{base}.enabled")), id=f"on-{slug(name.value)}",
                               classes="module-on")
                yield Label("replicas", classes="module-label")
                yield FieldInput(f"{base}.replicas", "int", to_text(self.value(f"{base}.replicas")))
            yield ErrorLine(base)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        for name in MODULE_TITLES:
            if event.checkbox.id == f"on-{slug(name.value)}":
                self.answer(f"modules.{name.value}.enabled", event.value)
