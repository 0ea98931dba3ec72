"""Plain mode through a real pseudo-terminal: a sandbox install that fails on an answer is fixed in place
and retried with the changes (the engine's replan) to the end; Helm's debug lines stay out of the output."""

from __future__ import annotations

import pexpect
import pytest

from hfwizard.draft import Draft
from tests.screens_helpers import SANDBOX_ANSWERS
from tests.test_plain import ENTER, spawn

BROKEN_TLS = {**SANDBOX_ANSWERS, "ingress.tls.enabled": True, "ingress.tls.existingSecret": "hf-missing-tls",
              "install.stallSeconds": 5}


ON_PURPOSE = ("the on-purpose failure (ingress.tls.existingSecret naming a Secret nobody made) no longer fails: "
              "the sandbox rehearses AWS values, whose ALB takes TLS from ACM and never names that Secret; "
              "this test needs a new on-purpose failure (issue 14 stays open for it)")


@pytest.mark.skip(reason=ON_PURPOSE)
@pytest.mark.timeout(300)
def test_plain_failed_install_fixed_and_retried_with_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    draft = Draft(state, "plain-fix")
    for path, value in BROKEN_TLS.items():
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
    child.expect("TLS Secret hf-missing-tls is missing")
    child.expect(r"Change an answer \(Existing TLS Secret\) and retry with the changes\?")
    failed_out = child.before
    child.send("y")
    child.expect(r"Create an Ingress\?")
    child.send("y")
    child.expect("Public domain")
    child.send(ENTER)
    child.expect("Ingress class")
    child.send(ENTER)
    child.expect(r"Serve TLS\?")
    child.send("n")
    child.expect("change: ingress.tls.enabled")
    child.expect(r"Retry with these changes\?")
    child.send("y")
    child.expect("install ok")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "DEBUG" not in failed_out
