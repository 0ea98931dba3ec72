"""`hfwizard sandbox`: the rehearsal, killed with SIGKILL part-way, then carried on by `hfwizard resume`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.clickhouse_support import operator_chart
from tests.engine_support import events
from tests.platform_support import CHARTS


def test_sandbox_killed_then_resumed(tmp_path: Path) -> None:
    """The Kubernetes API is emulated, by design: the sandbox is a rehearsal on an emulated cluster run
    as a child process with its objects in a state file in the install's state dir. The rehearsal is
    SIGKILLed during the platform's Helm wait; `hfwizard resume` restarts the emulator from its state
    file and finishes like a real install."""
    operator_chart()  # skips, saying why, without the chart repository copy the rehearsal takes it from
    state = tmp_path / "state"
    environ = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environ.update(HFWIZARD_SANDBOX_READY_DELAY="0.8", HFWIZARD_SANDBOX_STEP_DELAY="0", PYTHONUNBUFFERED="1",
                   HFWIZARD_SANDBOX_CHARTS=str(CHARTS))
    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "sandbox", "--json", "--state-dir", str(state)],
                            cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        if '"progress"' in line and '"helm/highflame"' in line:
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.communicate(timeout=30)
    assert proc.returncode == -9
    idir = state / "installs" / "sandbox"
    assert (idir / "cluster-state.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "hfwizard", "resume", "--json", "--state-dir", str(state)],
                             cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "REHEARSAL" in resumed.stderr
    evs = events(resumed.stdout)
    skipped = {e["step_id"] for e in evs if e["event"] == "step_finished" and e["status"] == "skipped"}
    assert {"namespace", "secrets", "helm/clickhouse-operator", "clickhouse/server"} <= skipped
    assert evs[-1]["event"] == "done" and evs[-1]["exit_code"] == 0
    recs = [json.loads(x) for x in (idir / "journal.jsonl").read_text().splitlines() if x.startswith("{")]
    assert [r["mode"] for r in recs if r["event"] == "install_started"] == ["install", "resume"]
    # The emulator went with the process that started it: nothing keeps serving the old port.
    kube = (idir / "kubeconfig").read_text()
    assert "server: http://127.0.0.1:" in kube
