"""Sizing: a preset (small / medium / large), then the node, Redis and PostgreSQL sizes with their allowed ranges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import RadioButton, RadioSet, Static

from hfwizard.profile_io import load_preset, preset_names

from .base import StepScreen

SIZE_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("sizing.nodes.count", "Worker nodes", "int", ""),
    ("sizing.nodes.cores", "Cores per node", "int", ""),
    ("sizing.nodes.memoryGiB", "Memory per node", "int", " GiB"),
    ("sizing.redis.memoryGiBPerNode", "Memory per Redis node", "float", " GiB"),
    ("sizing.postgres.vcpu", "PostgreSQL vCPUs", "int", ""),
    ("sizing.postgres.memoryGiB", "PostgreSQL memory", "int", " GiB"),
)


class SizingScreen(StepScreen):
    STEP = "sizing"
    TITLE = "Sizing"
    HELP = """\
Start from a preset, then adjust. Each field shows the range the platform supports and is checked
as you type:

* worker nodes: at least **6**, each with **8–16 cores** and **16–32 GiB**;
* Redis: at least **4 GiB** per node;
* PostgreSQL: at least **4 vCPU** and **8 GiB**.

A preset also sets each module's replicas, autoscaling and disruption budget (next step).
A value you type wins over the preset's.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Static("Choose a preset, then adjust any size:", classes="intro")
        current = self.draft.get("sizing.preset")
        with RadioSet(id="preset"):
            for name in preset_names():
                desc = _describe(name)
                yield RadioButton(f"{name:<7} {desc}", value=current == name, id=f"preset-{name}")
        for path, label, kind, unit in SIZE_FIELDS:
            yield self.field(path, label, kind=kind, unit=unit, ranged=True)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        name = (event.pressed.id or "").removeprefix("preset-")
        self.draft.set("sizing.preset", name)
        # A new preset replaces the sizes typed for the old one; the fields then show the preset's values.
        for path, *_ in SIZE_FIELDS:
            self.draft.set(path, None)
        self.refresh_fields()


def _describe(name: str) -> str:
    nodes = load_preset(name).get("sizing", {}).get("nodes", {})
    return f"{nodes.get('count', '?')} nodes × {nodes.get('cores', '?')} cores, {nodes.get('memoryGiB', '?')} GiB"
