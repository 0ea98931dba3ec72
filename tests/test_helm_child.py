"""Helm's child process ends with its parent in every case, and a SIGTERM never leaves it hanging.

Real Helm (Go SDK) against the emulated Kubernetes API (kmock plus our shim on loopback: no real API
server can run on these machines); the controller player holds workloads back so Helm keeps waiting.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfwizard.engine.helm_child import GRACE_S
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import helm_statuses

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux")




def _child(kubeconfig: Path, chart: Path, release: str, life: int | None = None,
           request: bool = True) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "hfwizard.engine.helm_child"] + (["--life-fd", str(life)] if life is not None else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            pass_fds=(life,) if life is not None else (), start_new_session=True)
    assert proc.stdin is not None
    if request:
        proc.stdin.write(json.dumps({
            "op": "install_or_upgrade", "kubeconfig": str(kubeconfig), "context": None, "release": release,
            "chart": {"ref": str(chart), "repo_url": None}, "namespace": "default", "values": {}, "wait": True,
            "timeout_s": 120, "version": None}).encode())
        proc.stdin.close()
    return proc


def _wait_pending(cluster: ClusterThread, name: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while "pending-install" not in helm_statuses(cluster, name):
        assert time.monotonic() < deadline and proc.poll() is None, "Helm never started waiting"
        time.sleep(0.05)


def test_a_working_child_ends_when_the_life_pipe_closes(cluster: ClusterThread, kubeconfig: Path,
                                                        demo_chart: Path) -> None:
    """No death signal and no parent pid to watch (the test, its parent, lives on): only EOF on the
    life pipe tells the child its caller is gone. It cancels Helm (the release is recorded failed)."""
    assert cluster.controllers is not None
    cluster.controllers.hold("life-*")
    read_end, write_end = os.pipe()
    proc = _child(kubeconfig, demo_chart, "life", read_end)
    os.close(read_end)
    try:
        _wait_pending(cluster, "life", proc)
        os.close(write_end)
        write_end = -1
        proc.wait(GRACE_S + 5)
    finally:
        if write_end >= 0:
            os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert helm_statuses(cluster, "life") == ["failed"]


def test_a_waiting_child_ends_when_the_life_pipe_closes(kubeconfig: Path, demo_chart: Path) -> None:
    """A warm child (Helm loaded, no request yet, stdin still open) exits at once on EOF."""
    read_end, write_end = os.pipe()
    proc = _child(kubeconfig, demo_chart, "unused", read_end, request=False)
    os.close(read_end)
    try:
        time.sleep(1.0)
        assert proc.poll() is None
        os.close(write_end)
        write_end = -1
        assert proc.wait(5) == 3
    finally:
        if write_end >= 0:
            os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_sigterm_at_any_moment_ends_the_child(cluster: ClusterThread, kubeconfig: Path, demo_chart: Path) -> None:
    """SIGTERMs, often several in a burst, at random moments (loading Helm, reading the request,
    applying, waiting): every child ends within its grace period, none hangs in its handler."""
    assert cluster.controllers is not None
    cluster.controllers.hold("burst-*")
    rng = random.Random(160)
    for i in range(8):
        proc = _child(kubeconfig, demo_chart, f"burst-{i}")
        try:
            time.sleep(rng.uniform(0.0, 2.0))
            for _ in range(rng.choice([1, 1, 3, 10])):
                os.kill(proc.pid, signal.SIGTERM)
            started = time.monotonic()
            proc.wait(GRACE_S + 5)
            assert time.monotonic() - started < GRACE_S + 2
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
                pytest.fail(f"child {i} outlived its SIGTERM")
    # None of them left a release pending (each was cancelled through Helm, or had not begun).
    for i in range(8):
        assert not {"pending-install", "pending-upgrade"} & set(helm_statuses(cluster, f"burst-{i}"))


def test_log_records_are_tied_to_a_call_only_when_they_name_it() -> None:
    """The child's router, as Helm's records read (their text as helm-python-sdk delivers it): tied by
    the calling thread, by a release or one of a call's objects; untied when nothing or two calls fit."""
    from hfwizard.engine.helm_child import _Router

    router = _Router()
    router.add("1", 101, "web", "apps")
    router.add("2", 102, "api", "apps")
    router.add("3", 103, "web", "other")  # the same release name in another namespace
    router.add_objects("2", [("apps", "api-deploy"), ("apps", "api-role")])
    assert router.route(102, "anything at all") == "2"
    assert router.route(999, "getting release history name=api") == "2"
    assert router.route(999, "creating release key=sh.helm.release.v1.api.v3") == "2"
    assert router.route(999, "getting history for release release=api") == "2"
    assert router.route(999, "Created resource via patch namespace=apps name=api-deploy gvk=apps/v1") == "2"
    assert router.route(999, "waiting for resource namespace= name=api-role kind=ClusterRole") == "2"
    assert router.route(999, "getting release history name=web") is None  # two namespaces have a `web`
    assert router.route(999, "waiting for resource namespace=apps name=web-deploy kind=Deployment") is None
    assert router.route(999, "waiting for resources count=8 timeout=1m0s") is None
    router.remove("2")
    assert router.route(102, "anything at all") is None
    assert router.route(999, "Created resource via patch namespace=apps name=api-deploy") is None
