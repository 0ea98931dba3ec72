"""Plain mode through a real pseudo-terminal: a sandbox install that fails on an answer is fixed in place
and retried with the changes (the engine's replan) to the end; Helm's debug lines stay out of the output."""

from __future__ import annotations

import pexpect
import pytest

from hfwizard.draft import Draft
from tests.screens_helpers import BROKEN_MIRROR
from tests.test_plain import ENTER, spawn


@pytest.mark.timeout(400)
def test_plain_failed_install_fixed_and_retried_with_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    draft = Draft(state, "plain-fix")
    for path, value in BROKEN_MIRROR.items():
        draft.set(path, value)
    draft.save()
    draft.save_step("review")
    child = spawn(state, HFWIZARD_SANDBOX_READY_DELAY="0.2", HFWIZARD_SANDBOX_STEP_DELAY="0")
    child.timeout = 120
    child.expect("Install name")
    child.send("\x15plain-fix" + ENTER)
    child.expect(r"Carry on from the review step\?")
    child.send("y")
    child.expect(r"Run preflight checks now\?")
    child.send("y")
    child.expect(r"Install now\?")
    child.send("y")
    child.expect(r"registry\.corp\.invalid:\s+no\s+such\s+host")  # wrapped at 80 columns, never cut
    child.expect(r"Change an answer \(Registry mirror\) and retry with the changes\?")
    failed_out = child.before
    child.send("y")
    child.expect("Registry mirror for every image")  # only the answer at fault is asked again
    child.send("\x15" + ENTER)  # cleared: the platform's own registry
    child.expect("change: images.mirror")
    child.expect(r"Retry with these changes\?")
    child.send("y")
    child.expect("install ok")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "DEBUG" not in failed_out
