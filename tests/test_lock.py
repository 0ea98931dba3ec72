"""The install lock: a file lock in the state dir plus a Lease in the target namespace."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfwizard.engine.kube import connect
from hfwizard.engine.lock import HOLDER_ANNOTATION, LEASE_NAME, Holder, LeaseLock
from hfwizard.errors import LockHeld, LockLost
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import CORE, emulated_cluster, env, events, release_revisions, write_profile
from tests.fixtures.servers import PgServer


@pytest.fixture
def cluster() -> ClusterThread:  # type: ignore[misc]
    with emulated_cluster(ready_delay=0.5) as handle:
        yield handle


@pytest.mark.parametrize("shared_state", [True, False], ids=["same-state-dir", "two-machines"])
def test_two_installs_at_once_one_proceeds_other_exits_4(shared_state: bool, tmp_path: Path,
                                                         cluster: ClusterThread, pg17: PgServer) -> None:
    """The Kubernetes API is emulated (no real API server can run here; Leases are served by the
    emulator). Two installs of one target start together: with a shared state dir the file lock
    decides, with separate state dirs (as from two machines) the Lease does. Exactly one proceeds."""
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc, pg=pg17)
    states = [tmp_path / "state", tmp_path / ("state" if shared_state else "state-b")]
    procs = [subprocess.Popen([sys.executable, "-m", "hfwizard", "install", "--profile", str(profile), "--yes",
                               "--json", "--skip-preflight", "--state-dir", str(s)],
                              cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in states]
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], [(r[1][-1500:], [e for e in events(r[0]) if e["event"] in ("step_failed", "done")])
                             for r in results]
    loser = results[[p.returncode for p in procs].index(4)]
    done = events(loser[0])[-1]
    assert done["event"] == "done" and done["exit_code"] == 4
    assert "pid" in done["message"] and "install 'canary'" in done["message"], done["message"]


def _lease(cluster: ClusterThread, holder: dict[str, object], renewed: datetime.datetime) -> None:
    async def put(c: object) -> None:
        await c.emulator.upsert({  # type: ignore[attr-defined]
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "highflame"}})
        identity = f"{holder['user']}@{holder['host']}/pid-{holder['pid']}/{holder['install']}"
        await c.emulator.upsert({  # type: ignore[attr-defined]
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": "highflame",
                         "annotations": {HOLDER_ANNOTATION: json.dumps(holder)}},
            "spec": {"holderIdentity": identity, "leaseDurationSeconds": 30,
                     "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})

    cluster.call(put)


def test_lease_of_a_killed_process_is_taken_over(tmp_path: Path, cluster: ClusterThread) -> None:
    """The Kubernetes API is emulated (no real server here). A Lease renewed just now but held by a pid
    that no longer runs on this host is taken over at once; a live holder elsewhere is refused with its
    name; an expired one is taken over."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    me = Holder.me("canary")
    now = datetime.datetime.now(tz=datetime.UTC)
    _lease(cluster, {"user": me.user, "host": me.host, "pid": int(dead.stdout), "install": "canary"}, now)
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    api = connect(str(kc), "sandbox")
    lock = LeaseLock(api, "highflame", me)
    lock.acquire_sync()
    assert lock.took_over_from is not None and lock.took_over_from.pid == int(dead.stdout)
    lock.release_sync()

    _lease(cluster, {"user": "ops", "host": "bastion-2", "pid": 4242, "install": "prod"}, now)
    with pytest.raises(LockHeld, match=r"ops@bastion-2 \(pid 4242, install 'prod'\)"):
        LeaseLock(api, "highflame", me).acquire_sync()

    _lease(cluster, {"user": "ops", "host": "bastion-2", "pid": 4242, "install": "prod"},
           now - datetime.timedelta(seconds=120))
    taker = LeaseLock(api, "highflame", me)
    taker.acquire_sync()
    assert taker.took_over_from is not None and taker.took_over_from.host == "bastion-2"


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_a_holder_frozen_past_its_lease_stops_before_its_next_change(tmp_path: Path, cluster: ClusterThread,
                                                                    pg17: PgServer) -> None:
    """The Kubernetes API is emulated (no real server here; it serves the Leases). Install A is frozen
    with SIGSTOP (as a suspended laptop) just as its first release step starts, for longer than its
    3 s Lease; install B (another state dir, as from another machine) takes the target over. When A is
    continued it must notice, before calling Helm, and exit 4 naming B; B completes, and every release
    is B's alone (revision 1: A made no upgrade over it)."""
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc, pg=pg17)
    lease = {"HFWIZARD_LEASE_SECONDS": "3"}

    def start(state: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "hfwizard", "install", "--profile", str(profile), "--yes",
                                 "--json", "--skip-preflight", "--state-dir", str(tmp_path / state)],
                                cwd=tmp_path, env=env(**lease, **extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    a = start("state-a", HFWIZARD_TEST_STOP_AT="helm/clickhouse-operator:started")  # the first release step
    b: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while not _stopped(a.pid):
            assert a.poll() is None and time.monotonic() < deadline, "A never reached its release step"
            time.sleep(0.05)
        time.sleep(4.5)  # past A's Lease
        b = start("state-b")
        assert b.stdout is not None
        for line in b.stdout:  # B holds the Lease once it starts its first step
            if '"step_started"' in line:
                break
        os.kill(a.pid, signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=60)
        _, b_err = b.communicate(timeout=120)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(10)
    assert a.returncode == 4, a_err[-1500:]
    done = events(a_out)[-1]
    assert done["event"] == "done" and done["exit_code"] == 4
    assert "lost the install lock" in done["message"] and f"pid {b.pid}" in done["message"], done["message"]
    after = [e for e in events(a_out) if e.get("step_id") == "helm/clickhouse-operator"]
    assert [e["event"] for e in after] == ["step_started", "step_failed"], after  # no Helm line in between
    assert b.returncode == 0, b_err[-1500:]
    assert release_revisions(cluster) == {**{f"highflame-{s}": [(1, "deployed")] for s in CORE},
                                         "clickhouse-operator": [(1, "deployed")]}


def test_a_taken_over_lease_is_reported_not_overwritten(tmp_path: Path, cluster: ClusterThread) -> None:
    """The Kubernetes API is emulated (no real server here). Once another install holds the Lease, the
    fence check and the renewal both raise LockLost naming it, and the renewal leaves its Lease alone."""
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    api = connect(str(kc), "sandbox")
    me = Holder.me("canary")
    lock = LeaseLock(api, "highflame", me, duration_s=3)
    lock.acquire_sync()
    lock.check_sync()
    lock.renew_sync()  # still ours: both pass
    other = {"user": "ops", "host": "bastion-2", "pid": 4242, "install": "prod"}
    _lease(cluster, other, datetime.datetime.now(tz=datetime.UTC))
    for call in (lock.check_sync, lock.renew_sync):
        with pytest.raises(LockLost, match=r"to ops@bastion-2 \(pid 4242, install 'prod'\)") as caught:
            call()
        assert caught.value.exit_code == 4
    holder = lock._read()["spec"]["holderIdentity"]
    assert holder == "ops@bastion-2/pid-4242/prod"
