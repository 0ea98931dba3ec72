"""One Helm child serving several calls at once: concurrent installs, cancelling one, a child that dies.

Real Helm (Go SDK in the child) against the emulated Kubernetes API (kmock plus our shim on loopback:
no real API server can run on these machines); the controller player holds workloads back so Helm
keeps waiting while the test acts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from hfwizard.engine.helm import HelmCancelled, HelmError
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import helm_statuses

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")




async def _until(check: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def _gone(pid: int) -> bool:
    """Ended and reaped: no process, not even a zombie, under that pid."""
    return not Path(f"/proc/{pid}").exists()


def test_concurrent_installs_share_one_child_and_keep_their_own_logs(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Four installs at once through one child: all four wait in Helm at the same time (they run in
    parallel, not one after another), each deploys, and each call's log names only its own objects."""
    assert cluster.controllers is not None
    names = [f"mux{i}" for i in range(4)]
    cluster.controllers.hold("mux*")
    logs: dict[str, list[str]] = {name: [] for name in names}

    async def scenario() -> set[int | None]:
        async with EmbeddedHelm(kubeconfig) as helm:
            calls = [asyncio.create_task(helm.install_or_upgrade(name, demo_chart, "default", {}, timeout_s=60,
                                                                 on_log=logs[name].append)) for name in names]
            await _until(lambda: all("pending-install" in helm_statuses(cluster, n) for n in names),
                         "the four installs never waited in Helm at the same time")
            pids = {helm.child_pid}
            cluster.controllers.release("mux*")
            infos = await asyncio.gather(*calls)
            assert [(i.name, i.revision, i.status) for i in infos] == [(n, 1, "deployed") for n in names]
            pids.add(helm.last_pid)
            return pids

    pids = asyncio.run(scenario())
    assert len(pids) == 1 and None not in pids
    for name in names:
        mine = logs[name]
        assert any(f"name={name}-web" in line for line in mine), f"{name} got none of its object lines"
        for line in mine:
            named = set(re.findall(r"name=(mux\d)", line))
            assert named <= {name}, f"{name}'s log got another call's line: {line}"
            # Helm's debug records that name nothing stay out of every call's log while several run.
            assert not (line.startswith("helm DEBUG") and "not tied to one call" in line), line


def test_cancelling_one_call_cancels_only_its_release(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Three installs in one child; the await of one is cancelled: Helm records that release failed,
    the other two go on to deploy, in the same child."""
    assert cluster.controllers is not None
    cluster.controllers.hold("cut*")

    async def scenario() -> None:
        async with EmbeddedHelm(kubeconfig) as helm:
            calls = {name: asyncio.create_task(helm.install_or_upgrade(name, demo_chart, "default", {}, timeout_s=60))
                     for name in ("cut0", "cut1", "cut2")}
            await _until(lambda: all("pending-install" in helm_statuses(cluster, n) for n in calls),
                         "the installs never reached Helm's wait")
            pid = helm.child_pid
            calls["cut1"].cancel()
            with pytest.raises(asyncio.CancelledError):
                await calls["cut1"]
            assert helm_statuses(cluster, "cut1") == ["failed"]  # recorded before the cancel returned
            assert helm.child_pid == pid and not calls["cut0"].done() and not calls["cut2"].done()
            cluster.controllers.release("cut*")
            assert (await calls["cut0"]).status == "deployed"
            assert (await calls["cut2"]).status == "deployed"

    asyncio.run(scenario())


def test_a_child_killed_mid_call_fails_every_call_and_is_reaped(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """SIGKILL (as the OOM killer sends) while two installs wait: both calls raise within seconds,
    naming the signal; the child is reaped (no zombie); the next call starts a new child."""
    assert cluster.controllers is not None
    cluster.controllers.hold("dead*")

    async def scenario() -> int:
        async with EmbeddedHelm(kubeconfig) as helm:
            calls = [asyncio.create_task(helm.install_or_upgrade(name, demo_chart, "default", {}, timeout_s=60))
                     for name in ("dead0", "dead1")]
            await _until(lambda: all("pending-install" in helm_statuses(cluster, n) for n in ("dead0", "dead1")),
                         "the installs never reached Helm's wait")
            pid = helm.child_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            for call in calls:
                with pytest.raises(HelmError) as caught:
                    await call
                assert "SIGKILL" in str(caught.value) and str(pid) in str(caught.value)
            assert time.monotonic() - killed < 5.0
            await _until(lambda: _gone(pid), f"the killed child {pid} was never reaped", 5.0)
            cluster.controllers.release("dead*")
            assert (await helm.list_releases("default")) is not None
            assert helm.last_pid not in (None, pid)
            return pid

    assert _gone(asyncio.run(scenario()))


def test_a_child_that_exits_without_answering_fails_the_call(tmp_path: Path) -> None:
    """A child that reads its call and exits (a crash before any answer): the call raises at once with
    the exit code and the child's last stderr lines, and the child is reaped."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nread line\necho 'fatal error: out of memory' >&2\nexit 7\n")
    fake.chmod(0o755)

    async def scenario() -> int | None:
        helm = EmbeddedHelm(python=str(fake))
        started = time.monotonic()
        with pytest.raises(HelmError) as caught:
            await helm.status("any", "default")
        assert time.monotonic() - started < 5.0
        assert "exited with code 7" in str(caught.value) and "out of memory" in str(caught.value)
        assert not isinstance(caught.value, HelmCancelled)
        return helm.last_pid

    pid = asyncio.run(scenario())
    assert pid is not None and _gone(pid)
