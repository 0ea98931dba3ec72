"""Pilot tests of recovery and safety: a failed sandbox install fixed from its banner and retried with the
changes; Start over, quitting and Ctrl+C during an install ask first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from textual.pilot import Pilot
from textual.widgets import Button, Input

from hfwizard.draft import Draft
from tests.screens_helpers import BAD_MIRROR, BROKEN_MIRROR, SANDBOX_ANSWERS, open_step

SIZE = (80, 24)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HFWIZARD_SANDBOX_READY_DELAY", "0.2")
    monkeypatch.setenv("HFWIZARD_SANDBOX_STEP_DELAY", "0")
    return tmp_path / "state"


async def until(pilot: Pilot[Any], test: Any, what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < end, f"timed out waiting for {what} (on {pilot.app.screen.id})"
        await pilot.pause(0.1)


def shown(app: WizardApp, selector: str) -> str:
    w = app.screen.query_one(selector)
    return str(w.render()) if w.display else ""


@pytest.mark.timeout(300)
async def test_failed_install_fixed_from_the_banner_and_retried_with_changes(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "review", BROKEN_MIRROR)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.id == "preflight-screen", "preflight")
        await until(pilot, lambda: getattr(app.screen, "finished", False), "the checks")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.id == "install-screen", "install")
        screen: Any = app.screen
        await until(pilot, lambda: screen.outcome is not None, "the install to fail")
        assert screen.outcome.status == "failed" and screen.outcome.exit_code == 1
        banner = shown(app, "#banner")
        assert "stalled" in banner and "registry.corp.invalid" in banner and "images.mirror" in banner, banner
        assert not screen.query_one("#cancel", Button).display  # nothing left to cancel
        assert screen.query_one("#next", Button).disabled
        assert "running" not in shown(app, "#problems")

        screen.query_one("#edit-answer", Button).press()
        await until(pilot, lambda: app.screen.id == "modules-screen", "Edit answer")
        await until(pilot, lambda: getattr(app.focused, "path", None) == "images.mirror",
                    "the field at fault to take focus", timeout=5)
        mirror = app.screen.query_one("#f-images-mirror", Input)
        assert mirror.value == BAD_MIRROR
        mirror.value = ""  # back to the platform's own registry
        await pilot.pause()
        await pilot.press("ctrl+n")  # back to Review, not on to the next step
        await until(pilot, lambda: app.screen.id == "review-screen", "Review")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.id == "preflight-screen", "preflight")
        await until(pilot, lambda: getattr(app.screen, "finished", False), "the checks")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.id == "confirm-modal", "the diff to confirm")
        diff = shown(app, "#confirm-text")
        assert "images.mirror" in diff, diff
        app.screen.query_one("#confirm-yes", Button).press()
        await until(pilot, lambda: app.screen.id == "install-screen", "the install screen")
        screen = app.screen
        await until(pilot, lambda: screen.outcome is not None, "the retried install")
        assert screen.outcome.status == "ok", shown(app, "#banner")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.id == "done-screen", "Done")


async def test_start_over_asks_first(root: Path) -> None:
    draft = Draft(root, "prod")
    draft.set("target.namespace", "kept")
    draft.save()
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#start-over", Button).press()
        await until(pilot, lambda: app.screen.id == "confirm-modal", "the question")
        await pilot.press("enter")  # focus starts on Cancel: a stray Enter keeps the answers
        await until(pilot, lambda: app.screen.id == "welcome-screen", "Welcome")
        assert Draft.load(root, "prod").get("target.namespace") == "kept"
        app.screen.query_one("#start-over", Button).press()
        await until(pilot, lambda: app.screen.id == "confirm-modal", "the question")
        app.screen.query_one("#confirm-yes", Button).press()
        await until(pilot, lambda: app.screen.id == "target-screen", "Target")
    assert Draft.load(root, "prod").get("target.namespace") is None


async def test_welcome_selects_the_newest_install_and_its_step(root: Path) -> None:
    import os

    for n, (name, step) in enumerate((("older", "sizing"), ("newer", "preflight"))):
        d = Draft(root, name)
        d.save()
        d.save_step(step)
        for f in d.install.path.iterdir():
            os.utime(f, (1_000_000 + n * 1000, 1_000_000 + n * 1000))
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        listing = app.screen.query_one("#installs")
        assert "newer" in str(listing.get_option_at_index(listing.highlighted).prompt)  # type: ignore[attr-defined]
        assert "at Preflight" in str(listing.get_option_at_index(listing.highlighted).prompt)  # type: ignore[attr-defined]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", ["ctrl+q", "ctrl+c"])
async def test_leaving_during_an_install_asks_first(root: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("HFWIZARD_SANDBOX_READY_DELAY", "3")
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        draft = app.open_draft("highflame")
        for path, value in SANDBOX_ANSWERS.items():
            draft.set(path, value)
        app.show("install")  # not open_step: it would wait for the whole install
        await until(pilot, lambda: app.screen.id == "install-screen", "install")
        screen: Any = app.screen
        await until(pilot, lambda: any(r.status == "running" for r in screen.rows.values()), "a running step")
        await pilot.press(key)
        await until(pilot, lambda: app.screen.id == "confirm-modal", "the question")
        app.screen.query_one("#confirm-no", Button).press()
        await until(pilot, lambda: app.screen is screen, "the install screen")
        assert screen.running  # "Keep installing" kept it going
        await pilot.press(key)
        await until(pilot, lambda: app.screen.id == "confirm-modal", "the question")
        app.screen.query_one("#confirm-yes", Button).press()
        await until(pilot, lambda: screen.outcome is not None, "the cancel")
        assert screen.outcome.exit_code == 3
        if key == "ctrl+c":  # cancelled, still here, and offering Resume
            assert screen.query_one("#resume-install", Button).display
            assert "Resume" in shown(app, "#banner")
    if key == "ctrl+q":
        assert app.return_value == 3 and app.return_code == 3  # interrupted and resumable, not success
