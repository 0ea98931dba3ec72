"""Snapshots of each wizard screen at 80×24 and 120×40 (cursor blink off, no paths or times on screen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from textual.pilot import Pilot
from textual.widgets import Input

from tests.screens_helpers import SANDBOX_ANSWERS, open_step

EXISTING = {**SANDBOX_ANSWERS, "target.cloud": "existing", "target.kubeconfig": "/nonexistent/kubeconfig"}

CASES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "welcome": (None, {}),
    "target": ("target", SANDBOX_ANSWERS),
    "credentials": ("credentials", SANDBOX_ANSWERS),
    "cluster": ("cluster", SANDBOX_ANSWERS),
    "cluster-existing": ("cluster", EXISTING),
    "data": ("data", EXISTING),
    "sizing": ("sizing", SANDBOX_ANSWERS),
    "sizing-bad": ("sizing", {**SANDBOX_ANSWERS, "sizing.nodes.cores": 20, "sizing.nodes.count": 3}),
    "modules": ("modules", SANDBOX_ANSWERS),
    "clerk": ("clerk", SANDBOX_ANSWERS),
    "ingress": ("ingress", SANDBOX_ANSWERS),
    "review": ("review", SANDBOX_ANSWERS),
    "done": ("done", SANDBOX_ANSWERS),
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("case", list(CASES))
def test_screen_snapshot(snap_compare: Any, tmp_path: Path, case: str, size: tuple[int, int]) -> None:
    step, answers = CASES[case]

    async def arrive(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, WizardApp)
        if step is not None:
            await open_step(app, pilot, step, answers)
        for inp in app.screen.query(Input):
            inp.cursor_blink = False
        await pilot.pause()

    assert snap_compare(WizardApp(tmp_path / "state"), terminal_size=size, run_before=arrive)
