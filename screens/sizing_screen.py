"""Sizing: a preset (small / medium / large), then the node, Redis and PostgreSQL sizes with their allowed ranges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import RadioSet, Static

from hfwizard import requirements as req
from hfwizard.profile_io import load_preset

from .base import Choice, FieldRadioSet, StepScreen


class SizingScreen(StepScreen):
    STEP = "sizing"
    TITLE = "Sizing"
    HELP = f"""\
Start from a preset, then adjust. Each field shows the range the platform supports and is checked
as you type:

* worker nodes: at least **{req.WORKERS_MIN}**, each with **{req.span(req.WORKER_CORES)} cores** and \
**{req.span(req.WORKER_MEMORY_GIB)} GiB**;
* Redis: at least **{req.REDIS_MEMORY_GIB_MIN} GiB** per node;
* PostgreSQL: at least **{req.POSTGRES_VCPU_MIN} vCPU** and **{req.POSTGRES_MEMORY_GIB_MIN} GiB**.

A preset also sets each module's replicas, autoscaling and disruption budget (next step).
A value you type wins over the preset's.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Static("Choose a preset, then adjust any size:", classes="intro")
        preset, *sizes = self.questions()
        current = self.draft.get(preset.path)
        with FieldRadioSet(path=preset.path, id="preset"):
            for name in preset.options():
                desc = _describe(name)
                yield Choice(f"{name:<7} {desc}", value=current == name, id=f"preset-{name}")
        for q in sizes:
            yield self.question_field(q)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        name = (event.pressed.id or "").removeprefix("preset-")
        self.draft.set("sizing.preset", name)
        # A new preset replaces the sizes typed for the old one; the fields then show the preset's values.
        for q in self.questions()[1:]:
            self.draft.set(q.path, None)
        self.refresh_fields()


def _describe(name: str) -> str:
    nodes = load_preset(name).get("sizing", {}).get("nodes", {})
    return f"{nodes.get('count', '?')} nodes × {nodes.get('cores', '?')} cores, {nodes.get('memoryGiB', '?')} GiB"
