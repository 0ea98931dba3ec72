"""The install lock: a file lock in the state dir plus a Lease in the target namespace."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hfwizard.engine.kube import connect
from hfwizard.engine.lock import HOLDER_ANNOTATION, LEASE_NAME, Holder, LeaseLock
from hfwizard.errors import LockHeld
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import emulated_cluster, env, events, write_profile


@pytest.fixture
def cluster() -> ClusterThread:  # type: ignore[misc]
    with emulated_cluster(ready_delay=0.5) as handle:
        yield handle


@pytest.mark.parametrize("shared_state", [True, False], ids=["same-state-dir", "two-machines"])
def test_two_installs_at_once_one_proceeds_other_exits_4(shared_state: bool, tmp_path: Path,
                                                         cluster: ClusterThread) -> None:
    """The Kubernetes API is emulated (no real API server can run here; Leases are served by the
    emulator). Two installs of one target start together: with a shared state dir the file lock
    decides, with separate state dirs (as from two machines) the Lease does. Exactly one proceeds."""
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc)
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
