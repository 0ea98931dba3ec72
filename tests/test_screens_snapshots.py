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


class FailedRun:
    """Stands in for operations.InstallRun in the banner's snapshot: a fixed failure, so the picture is stable
    (the real failure, end to end, is tests/test_screens_recovery.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def events(self) -> Any:
        from hfwizard.events import InstallFinished, StepFailed, StepFinished, StepStarted

        yield StepStarted("namespace", "Namespace highflame")
        yield StepFinished("namespace", "ok", "created")
        yield StepStarted("verify", "Verify the platform")
        yield StepFailed("verify", "TLS Secret hf-missing-tls is missing: the Ingress for highflame.sandbox.local "
                         "names it in spec.tls, but no Secret of that name is in namespace highflame",
                         remedy="create the kubernetes.io/tls Secret hf-missing-tls in namespace highflame, or "
                         "choose another certificate source on the Ingress step")
        yield InstallFinished("failed", 1, "verify failed")

    def cancel(self) -> None:
        pass


@pytest.mark.parametrize("case", ["install-failed", "preflight-ordered", "review-summary"])
def test_new_screen_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    from hfwizard import operations
    from tests.test_screens_preflight_order import fake_preflight

    monkeypatch.setattr(operations, "InstallRun", FailedRun)
    monkeypatch.setattr(operations, "preflight", fake_preflight)
    step = {"install-failed": "install", "preflight-ordered": "preflight", "review-summary": "review"}[case]

    async def arrive(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, WizardApp)
        await open_step(app, pilot, step, SANDBOX_ANSWERS)
        for inp in app.screen.query(Input):
            inp.cursor_blink = False
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(WizardApp(tmp_path / "state"), terminal_size=(80, 24), run_before=arrive)
