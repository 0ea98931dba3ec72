"""Helpers shared by the TUI tests: a wizard app on a temporary state root, opened at a chosen step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfwizard.screens.app import WizardApp
from textual.pilot import Pilot
from textual.widgets import Button, Input

SANDBOX_ANSWERS: dict[str, Any] = {
    "target.cloud": "sandbox",
    "sizing.preset": "small",
    "clerk.publishableKey": "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA",
    "ingress.domain": "highflame.sandbox.local",
    "ingress.tls.enabled": False,
}

# The on-purpose failure of the recovery tests: a registry mirror (images.mirror, on the Modules step) at a
# host the nodes cannot resolve, as an operator's typo would give. Preflight cannot see it (the nodes pull,
# not this machine); the emulated nodes try the operator's registry for real, pulls fail (ErrImagePull),
# the releases stall after install.stallSeconds (10 s: short, yet long enough for the good run on a loaded
# machine), and clearing the mirror fixes it. `.invalid` never resolves.
BAD_MIRROR = "registry.corp.invalid:5000/ghcr"
BROKEN_MIRROR: dict[str, Any] = {**SANDBOX_ANSWERS, "images.mirror": BAD_MIRROR, "install.stallSeconds": 10}


async def open_step(app: WizardApp, pilot: Pilot[Any], step: str, answers: dict[str, Any] | None = None,
                    name: str = "highflame") -> None:
    draft = app.open_draft(name)
    for path, value in (answers or {}).items():
        draft.set(path, value)
    app.show(step)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def type_into(pilot: Pilot[Any], selector: str, text: str) -> None:
    inp = pilot.app.screen.query_one(selector, Input)
    inp.focus()
    inp.value = ""
    await pilot.pause()
    await pilot.press(*list(text)) if text else None
    await pilot.pause()


def next_disabled(app: WizardApp) -> bool:
    return app.screen.query_one("#next", Button).disabled


def text_of(app: WizardApp, selector: str) -> str:
    widget = app.screen.query_one(selector)
    return str(widget.render()) if widget.display else ""


def make_app(root: Path) -> WizardApp:
    return WizardApp(root)
