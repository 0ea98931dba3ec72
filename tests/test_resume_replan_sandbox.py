"""`hfwizard resume --replan --yes` on a sandbox whose profile changed after a failure carries on with the
new answers; without --replan the same resume is refused (exit 2) and nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfwizard.draft import Draft
from tests.screens_helpers import BROKEN_MIRROR

ROOT = Path(__file__).resolve().parent.parent


def hfwizard(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HFWIZARD_STATE_DIR": str(state), "NO_COLOR": "1",
           "HFWIZARD_SANDBOX_READY_DELAY": "0.2", "HFWIZARD_SANDBOX_STEP_DELAY": "0"}
    env.pop("KUBECONFIG", None)
    return subprocess.run([sys.executable, "-m", "hfwizard", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=240)


@pytest.mark.timeout(600)
def test_resume_replan_carries_on_a_changed_sandbox(tmp_path: Path) -> None:
    state = tmp_path / "state"
    draft = Draft(state, "sb")
    for path, value in BROKEN_MIRROR.items():
        draft.set(path, value)
    draft.finish()
    first = hfwizard(state, "resume", "--yes", "--install", "sb")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "registry.corp.invalid" in first.stdout and "ErrImagePull" in first.stdout, first.stdout

    draft = Draft.load(state, "sb")
    draft.set("images.mirror", None)
    draft.finish()
    refused = hfwizard(state, "resume", "--yes", "--install", "sb")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--replan" in refused.stdout + refused.stderr

    carried = hfwizard(state, "resume", "--replan", "--yes", "--install", "sb")
    assert carried.returncode == 0, carried.stdout + carried.stderr
