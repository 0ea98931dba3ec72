"""`hfwizard status` with nothing installed says how to start, not only that there is nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_status_with_no_installs_names_the_next_step(tmp_path: Path) -> None:
    env = {**os.environ, "HFWIZARD_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "hfwizard", "status"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "no installs under" in done.stdout
    assert "hfwizard install --profile FILE" in done.stdout and "hfwizard sandbox" in done.stdout
