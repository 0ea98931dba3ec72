"""The Helm guard: a killed installer's Helm child holds it until it has recorded its cancelled calls.

Real Helm (its Go SDK in the child) against the emulated Kubernetes API. The installer is a process of its
own here so that the test can SIGKILL it, as a closed laptop or the OOM killer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hfwizard.engine import helm_guard
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import helm_statuses

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock and parent-death signals")

_INSTALLER = textwrap.dedent("""
    import asyncio, os, sys
    from hfwizard.engine.helm_embedded import EmbeddedHelm
    from hfwizard.engine.helm_guard import GUARD_ENV

    async def main():
        kubeconfig, chart, guard = sys.argv[1:4]
        helm = EmbeddedHelm(kubeconfig, env={**os.environ, GUARD_ENV: guard})
        call = asyncio.create_task(helm.install_or_upgrade("guarded", chart, "default", {}, timeout_s=120))
        await asyncio.sleep(600)  # the test kills us while Helm waits

    asyncio.run(main())
""")




def test_a_killed_installers_helm_child_holds_the_guard_until_its_cancel_is_recorded(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path, tmp_path: Path
) -> None:
    assert cluster.controllers is not None
    cluster.controllers.hold("guarded*")
    guard = tmp_path / "helm.guard"
    assert not helm_guard.busy(guard)
    installer = subprocess.Popen([sys.executable, "-c", _INSTALLER, str(kubeconfig), str(demo_chart), str(guard)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while helm_statuses(cluster, "guarded") != ["pending-install"]:
            assert installer.poll() is None, installer.stderr.read().decode()[-2000:] if installer.stderr else ""
            assert time.monotonic() < deadline, "the install never reached Helm's wait"
            time.sleep(0.05)
        assert helm_guard.busy(guard)  # the child holds it while it works
        os.kill(installer.pid, signal.SIGKILL)
        installer.wait(10)
        # The orphaned child cancels its call and Helm records it; only then does the guard come free, so an
        # engine that waits for the guard never reads the release before that record lands.
        assert helm_guard.wait_free(guard, 15.0), "the orphaned Helm child kept the guard"
        assert helm_statuses(cluster, "guarded") == ["failed"]
    finally:
        if installer.poll() is None:
            installer.kill()
            installer.wait()


def test_waiting_for_the_guard_ends_when_its_holder_does(tmp_path: Path) -> None:
    guard = tmp_path / "helm.guard"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from hfwizard.engine.helm_guard import hold_shared\n"
                               "hold_shared(sys.argv[1]); print('held', flush=True); time.sleep(1.0)", str(guard)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert helm_guard.busy(guard)
    assert not helm_guard.wait_free(guard, 0.2)  # a bounded wait gives up while it is held
    started = time.monotonic()
    assert helm_guard.wait_free(guard, 10.0)
    assert 0.3 < time.monotonic() - started < 5.0
    holder.wait(5)
    assert not helm_guard.busy(guard)
