"""Modules: the seven platform modules, each on or off, with its replica count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.containers import Horizontal
from textual.widgets import Label, Static

from .base import ErrorLine, FieldCheckbox, FieldInput, StepScreen, slug, to_text


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
        asked = [q for q in self.questions() if q.path.startswith("modules.")]
        # Each module's switch, then its replica count (hfwizard.questions lists them in pairs).
        for on, replicas in zip(asked[::2], asked[1::2], strict=True):
            base = on.path.removesuffix(".enabled")
            with Horizontal(classes="module-line"):
                yield FieldCheckbox(on.path, on.label, bool(self.value(on.path)),
                                    id=f"on-{slug(base.split('.')[-1])}")
                yield Label(replicas.label, classes="module-label")
                yield FieldInput(replicas.path, replicas.input_kind, to_text(self.value(replicas.path)))
            yield ErrorLine(base)
        yield from self.compose_questions(lambda q: not q.path.startswith("modules."))
