"""The real `hfwizard` in tmux (80×24): a sandbox install fails on an answer (a registry mirror the nodes
cannot resolve), the answer is fixed from the failure banner, the install is retried with the changes and
reaches Done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hfwizard.draft import Draft
from tests.screens_helpers import BROKEN_MIRROR
from tests.test_screens_e2e import Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.mark.timeout(400)
def test_fail_fix_from_the_banner_retry_reach_done(tmp_path: Path) -> None:
    state = tmp_path / "state"
    draft = Draft(state, "highflame")
    for path, value in BROKEN_MIRROR.items():
        draft.set(path, value)
    draft.save()
    draft.save_step("review")
    term = Terminal(state, HFWIZARD_SANDBOX_READY_DELAY="0.2", HFWIZARD_SANDBOX_STEP_DELAY="0")
    try:
        term.wait_for("answers saved, at Review")
        term.settle()
        term.keys("Enter")  # Resume (focused) goes to the saved step
        term.wait_for("· Review")
        term.keys("C-n")
        term.wait_for("· Preflight", "0 failed")
        term.keys("C-n")
        screen = term.wait_for("registry.corp.invalid", "Edit answer", timeout=180)
        assert "Install failed" in screen
        term.keys("e")  # Edit answer: the Modules step, the registry mirror field focused
        # The field at the foot of the step is scrolled into view once it has the focus.
        term.wait_for("· Modules", "Registry mirror", "registry.corp.invalid")
        term.settle()
        term.keys("Home", "C-k")  # clear it: images come from the platform's own registry again
        term.wait_for("· Modules", "Registry mirror", "mirror.example.com")  # the empty field's placeholder
        term.keys("C-n")
        term.wait_for("· Review")
        term.keys("C-n")
        term.wait_for("· Preflight", "0 failed")
        term.keys("C-n")
        screen = term.wait_for("Retry with these changes?", "images.mirror")
        term.keys("Tab", "Enter")  # from Cancel (the safe default) to "Retry with changes"
        term.wait_for("✓ Installed.", timeout=120)
        term.keys("C-n")
        term.wait_for("installed in the sandbox")
    finally:
        term.close()
