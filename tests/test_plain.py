"""Plain mode driven through a real pseudo-terminal with pexpect, to a saved profile."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from hfwizard.profile_io import load_profile

ROOT = Path(__file__).resolve().parent.parent
ENTER = "\r"
DOWN = "\x1b[B"


def spawn(state: Path) -> pexpect.spawn:
    env = {**os.environ, "HFWIZARD_STATE_DIR": str(state), "TERM": "xterm", "NO_COLOR": "1"}
    return pexpect.spawn(sys.executable, ["-m", "hfwizard", "--plain"], cwd=str(ROOT), env=env,
                         encoding="utf-8", timeout=30, dimensions=(24, 80))


def answer(child: pexpect.spawn, prompt: str, text: str | None = None) -> None:
    child.expect(prompt)
    if text is not None:
        child.send("\x15" + text)  # Ctrl-U clears the default first
    child.send(ENTER)


@pytest.mark.timeout(120)
def test_plain_mode_to_a_saved_profile(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = spawn(state)
    answer(child, "Install name", "plain-test")
    child.expect("Where will Highflame run")
    child.send(DOWN)  # from the default ("existing") to "sandbox"
    time.sleep(0.2)
    child.send(ENTER)
    answer(child, "Namespace")
    answer(child, "Helm release name")
    child.expect("Sizing preset")
    child.send(ENTER)  # large (first in the list)
    # A bad value is refused with the model's reason, then a good one is taken.
    child.expect("Worker nodes")
    child.send("\x15" + "3" + ENTER)
    child.expect("greater than or equal to 6")
    child.send("\x15" + "9" + ENTER)
    answer(child, "Cores per node")
    answer(child, "Memory per node")
    answer(child, "Memory per Redis node")
    for _ in range(7):
        answer(child, r"Enable .*\?")
    answer(child, "publishable key", "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA")
    answer(child, "secret key reference", "sk_live_NOTAREF")
    child.expect("secret reference")
    child.send("\x15" + "env:CLERK_SECRET_KEY" + ENTER)
    answer(child, "Public domain", "hf.sandbox.local")
    answer(child, "Ingress class")
    child.expect(r"Serve TLS\?")
    child.send("n")  # a confirm takes y / n without Enter
    child.expect("saved profile: ")
    child.expect(r"Run preflight checks now\?")
    child.send("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    loaded = load_profile(state / "installs" / "plain-test" / "profile.yaml").profile
    assert loaded.target.cloud.value == "sandbox"
    assert loaded.sizing.nodes.count == 9
    assert loaded.clerk.secret_key == "env:CLERK_SECRET_KEY"
    text = (state / "installs" / "plain-test" / "profile.yaml").read_text()
    assert "sk_live_NOTAREF" not in text
