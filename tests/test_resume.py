"""Crash and resume: the install process SIGKILLed at many points, then `hfwizard resume`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.emulator.controllers import ControllerPlayer
from tests.engine_support import (
    CORE,
    assert_no_canary,
    emulated_cluster,
    events,
    hfwizard,
    journal_records,
    release_revisions,
    snapshot,
    write_profile,
)
from tests.fixtures.servers import PgServer

KILL_POINTS = [
    "run:started",
    "charts:finished",
    "namespace:finished",
    "secrets/env:mid",  # one env Secret written, the others not
    "secrets/generated:applied",  # generated and written, the journal does not know
    "databases:applied",
    "helm/clickhouse-operator:mid",  # Helm applied the operator's manifests and is waiting
    "clickhouse/server:mid",  # the installation applied, the operator reconciling it
    "clickhouse/setup:applied",  # the Job complete, the journal does not know
    "helm/highflame-authn:started",
    "helm/highflame-admin:mid",  # Helm applied the manifests and is waiting: release pending
    "helm/highflame-admin:applied",  # Helm finished, the journal does not know
    "helm/highflame-studio:finished",
    "verify:started",
    "run:finishing",
]
# The workloads held back (never ready) while the first run goes, so a "mid" point fires inside Helm's wait
# every time rather than by a race with a slow controller; released before the resume.
HELD = {"helm/clickhouse-operator:mid": "clickhouse-operator*", "helm/highflame-admin:mid": "highflame-admin"}
# Controllers turn every other workload ready quickly: the kill points do not depend on it.
READY_DELAY = 0.05


@pytest.fixture
def pg(pg17: PgServer) -> PgServer:
    return pg17


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, pg17: PgServer) -> dict[str, Any]:
    """The cluster state an uninterrupted install leaves (compared against every resumed one)."""
    tmp = tmp_path_factory.mktemp("reference")
    with emulated_cluster(ready_delay=READY_DELAY) as cluster:
        kc = cluster.write_kubeconfig(tmp / "kubeconfig")
        profile = write_profile(tmp, kc, pg=pg17)
        run = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                       state=tmp / "state", cwd=tmp)
        assert run.returncode == 0, run.stderr
        return _normal(snapshot(cluster), kc)


def _normal(snap: dict[str, Any], kubeconfig: Path) -> dict[str, Any]:
    return snap  # the kubeconfig path is not part of any object


@pytest.fixture
def cluster() -> Iterator[ClusterThread]:
    with emulated_cluster(ready_delay=READY_DELAY) as handle:
        yield handle


def _players(cluster: ClusterThread) -> ControllerPlayer:
    assert cluster.controllers is not None
    return cluster.controllers


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_install_resumes_to_the_same_state(point: str, tmp_path: Path, cluster: ClusterThread,
                                                  reference: dict[str, Any], pg: PgServer) -> None:
    """The Kubernetes API is emulated (kmock plus our shim, controllers played) because no real API
    server can run here; Helm is real. The install is SIGKILLed at `point`, then `hfwizard resume` must
    end in the same cluster state as an uninterrupted install: no duplicated release, and no step done
    twice except the one that was running."""
    state = tmp_path / "state"
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc, pg=pg)
    if point in HELD:
        _players(cluster).hold(HELD[point])
    first = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                     state=state, cwd=tmp_path, extra_env={"HFWIZARD_TEST_KILL_AT": point})
    assert first.returncode == -9, f"not killed at {point}: rc={first.returncode} {first.stderr[-2000:]}"
    if point in HELD:
        _players(cluster).release(HELD[point])
    status = hfwizard("status", state=state, cwd=tmp_path)
    assert "interrupted" in status.stdout

    second = hfwizard("resume", "--json", state=state, cwd=tmp_path)
    assert second.returncode == 0, f"resume after {point}: {second.stderr[-3000:]}\n{second.stdout[-3000:]}"
    evs = events(second.stdout)
    assert evs[-1]["event"] == "done" and evs[-1]["status"] == "ok"

    assert snapshot(cluster) == reference
    revisions = release_revisions(cluster)
    expected = {*(f"highflame-{s}" for s in CORE), "clickhouse-operator"}
    assert set(revisions) == expected, "no duplicated or stray release"
    for name, revs in revisions.items():
        assert revs[-1][1] == "deployed", (name, revs)
        assert len(revs) <= 2, f"{name} was installed more than once over: {revs}"

    recs = journal_records(state)
    runs = [r for r in recs if r["event"] == "install_started"]
    assert [r["mode"] for r in runs] == ["install", "resume"]
    started = Counter(r["step"] for r in recs if r["event"] == "step_started")
    finished = Counter(r["step"] for r in recs if r["event"] == "step_finished")
    # Running at the kill: started in the first run and never finished there (with steps running
    # concurrently, a kill can catch more than one).
    second_run = recs.index(runs[1])
    first_started = {r["step"] for r in recs[:second_run] if r["event"] == "step_started"}
    first_finished = {r["step"] for r in recs[:second_run] if r["event"] == "step_finished"}
    running = first_started - first_finished
    expected = _running_at_kill(point)
    assert expected is None or expected in running
    for step, count in started.items():
        allowed = 2 if step in running else 1
        assert count <= allowed, f"{step} started {count} times after a kill at {point}"
    assert all(n == 1 for n in finished.values()), finished
    assert_no_canary(first.stdout, first.stderr, second.stdout, second.stderr, where="output")


def _running_at_kill(point: str) -> str | None:
    step, _, where = point.rpartition(":")
    return step if step != "run" and where in ("started", "mid", "applied") else None


def test_changed_profile_is_refused_until_replan(tmp_path: Path, cluster: ClusterThread, pg: PgServer) -> None:
    """The Kubernetes API is emulated (no real server here). A profile changed between the interrupted
    run and the resume is refused with the exact answers that changed; --replan carries on with it."""
    state = tmp_path / "state"
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc, pg=pg)
    first = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                     state=state, cwd=tmp_path, extra_env={"HFWIZARD_TEST_KILL_AT": "secrets/env:finished"})
    assert first.returncode == -9
    saved = state / "installs" / "canary" / "profile.yaml"
    assert "1.2.3" in saved.read_text()
    saved.write_text(saved.read_text().replace("1.2.3", "1.2.4").replace("storageSize: 50Gi", "storageSize: 80Gi"))
    refused = hfwizard("resume", "--json", state=state, cwd=tmp_path)
    assert refused.returncode == 2
    done = events(refused.stdout)[-1]
    assert 'images.tag: "1.2.3" -> "1.2.4"' in done["message"], done["message"]
    assert 'clickhouse.storageSize: "50Gi" -> "80Gi"' in done["message"], done["message"]
    assert done["message"].count("\n  - ") == 2, "only the answers that changed are listed"
    ok = hfwizard("resume", "--json", "--replan", state=state, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    emu = cluster.cluster.emulator  # type: ignore[union-attr]
    dep = emu.get_object("apps/v1", "Deployment", "highflame", "highflame-admin")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.2.4")
    chi = emu.get_object("clickhouse.altinity.com/v1", "ClickHouseInstallation", "highflame", "ch")
    assert chi["spec"]["templates"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "80Gi"


def test_sigint_marks_the_step_interrupted_and_exits_3(tmp_path: Path, cluster: ClusterThread, pg: PgServer) -> None:
    """The Kubernetes API is emulated (no real server here). SIGINT during a Helm wait: the running step
    is journalled as interrupted, the exit code is 3, and resume finishes the install."""
    import signal
    import subprocess
    import sys
    import time

    from tests.engine_support import env

    state = tmp_path / "state"
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    profile = write_profile(tmp_path, kc, pg=pg)
    _players(cluster).hold("highflame-authn")  # its Helm wait lasts until the SIGINT
    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "install", "--profile", str(profile), "--yes",
                             "--json", "--skip-preflight", "--state-dir", str(state)],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if '"progress"' in line and "helm/highflame-authn" in line:
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3
    evs = events(out)
    assert any(e["event"] == "step_failed" and e["interrupted"] for e in evs)
    recs = journal_records(state)
    assert recs[-1]["event"] == "install_finished" and recs[-1]["status"] == "interrupted"
    assert any(r["event"] == "step_failed" and r.get("interrupted") for r in recs)
    _players(cluster).release("highflame-authn")
    again = hfwizard("resume", "--json", state=state, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
