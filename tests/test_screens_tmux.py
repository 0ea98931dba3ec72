"""The real `hfwizard` program in a real terminal (tmux, 80×24): the first screens by keys alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ROOT = Path(__file__).resolve().parent.parent


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                          check=False).stdout


def wait_for(session: str, text: str, timeout: float = 15) -> str:
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = capture(session)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


def keys(session: str, *k: str) -> None:
    for key in k:
        subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
        time.sleep(0.15)


@pytest.mark.timeout(90)
def test_first_screens_in_tmux(tmp_path: Path) -> None:
    session = f"hfw-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    cmd = f"cd {ROOT} && HFWIZARD_STATE_DIR={state} {sys.executable} -m hfwizard"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    "-e", f"TERM={os.environ.get('TERM', 'xterm-256color')}", cmd], check=True)
    try:
        wait_for(session, "New install name")
        # The proposed name can land in a later frame than the label on a busy machine: wait for it too.
        screen = wait_for(session, "highflame")
        keys(session, "Enter")
        screen = wait_for(session, "Step 1 of 12 · Target")
        assert "Sandbox: rehearse" in screen and "Next" in screen
        keys(session, "Down", "Enter")  # from "existing" to "sandbox"
        keys(session, "C-n")
        screen = wait_for(session, "Step 2 of 12 · Credentials")
        assert "need no cloud credentials" in screen
        keys(session, "C-n")
        wait_for(session, "Step 3 of 12 · Cluster")
        keys(session, "C-n", "C-n")
        wait_for(session, "Step 5 of 12 · Sizing")
        keys(session, "Tab")  # preset -> worker nodes
        keys(session, "C-u", "3")
        screen = wait_for(session, "greater than or equal to")  # wrapped: its "6" is on the next line
        keys(session, "BSpace", "8")
        keys(session, "C-b")
        wait_for(session, "Step 4 of 12 · Data services")
        keys(session, "F1")
        wait_for(session, "Help · Data services")
        keys(session, "Escape", "C-q")
        end = time.monotonic() + 10
        while time.monotonic() < end and session in subprocess.run(
                ["tmux", "ls"], capture_output=True, text=True, check=False).stdout:
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    draft = (state / "installs" / "highflame" / "draft.yaml").read_text()
    assert "cloud: sandbox" in draft and "count: 8" in draft
