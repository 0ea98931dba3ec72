"""`hfwizard uninstall NAME`: reverse order, data kept unless --delete-data with the typed name,
resumable after SIGKILL, refused while an install holds the lock.

The Kubernetes API is emulated (kmock plus our shim on loopback: no real API server runs on these
machines); Helm and Highflame's charts are real, run by `hfwizard` as its own process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import daytwo_platform as hp
from tests.engine_support import emulated_cluster, events, hfwizard

pytestmark = pytest.mark.skipif(not hp.CHARTS.is_dir(), reason="Highflame's charts are not on this machine")

RELEASES = ["highflame-admin", "highflame-authn", "highflame-redteam"]


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """admin, authn, redteam installed in that order into the saved install "u1", plus a data volume claim."""
    with emulated_cluster(ready_delay=0.1) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        prof = hp.profile("u1", kc)
        inst = hp.saved_install(tmp_path / "state", prof)
        services = [("admin", hp.chart("highflame-generic", "1.0.3"), hp.service_values("admin")),
                    ("authn", hp.chart("highflame-generic", "1.0.3"), hp.service_values("authn")),
                    ("redteam", hp.chart("highflame-redteam", "1.0.5"), hp.service_values("redteam"))]
        code, seen = hp.run_engine(prof, inst, hp.plan(services))
        assert code == 0, seen[-1]
        k = hp.kube(kc)
        k.core.create_namespaced_persistent_volume_claim(hp.NS, {
            "metadata": {"name": "data-chi-highflame-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        yield {"tmp": tmp_path, "state": tmp_path / "state", "kube": k, "inst": inst, "profile": prof}


def _releases(k: Any) -> list[str]:
    return sorted(hp.chart_versions(k))


def _claims(k: Any) -> list[str]:
    return [c.metadata.name for c in k.core.list_namespaced_persistent_volume_claim(hp.NS).items]


def _owned_secrets(k: Any) -> list[str]:
    listed = k.core.list_namespaced_secret(hp.NS, label_selector="app.kubernetes.io/managed-by=hfwizard")
    return sorted(s.metadata.name for s in listed.items)


def _uninstall(ctx: dict[str, Any], *args: str, **env: str) -> Any:
    return hfwizard("uninstall", "u1", "--json", *args, state=ctx["state"], cwd=ctx["tmp"], extra_env=env)


def test_uninstall_removes_releases_in_reverse_order_and_keeps_the_data(installed: dict[str, Any]) -> None:
    k = installed["kube"]
    assert _releases(k) == RELEASES
    done = _uninstall(installed)
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    evs = events(done.stdout)
    started = [e["step_id"] for e in evs if e["event"] == "step_started"]
    assert started == ["delete-objects", "uninstall/highflame-redteam", "uninstall/highflame-authn",
                       "uninstall/highflame-admin"]
    [finished] = [e for e in evs if e["event"] == "done"]
    assert finished["exit_code"] == 0 and "is uninstalled" in finished["message"], finished
    assert _releases(k) == []
    assert _claims(k) == ["data-chi-highflame-0"], "volume claims are kept without --delete-data"
    assert hp.GENERATED in _owned_secrets(k), "generated Secrets are kept: kept volumes need them"
    kept = [e["line"] for e in evs if e["event"] == "log" and e["step_id"] == "uninstall"]
    assert evs[-1]["event"] == "done", "the run's last event stays its end"
    assert any("PersistentVolumeClaims" in line and "--delete-data" in line for line in kept)
    # The install's own journal is untouched: `resume` must never take the uninstall for an install.
    assert installed["inst"].status().listed == "done"


def test_delete_data_needs_the_install_name_typed(installed: dict[str, Any]) -> None:
    k = installed["kube"]
    wrong = _uninstall(installed, "--delete-data", "--confirm", "u2")
    assert wrong.returncode == 2 and "is not the install's ('u1')" in wrong.stderr, wrong.stderr
    assert _releases(k) == RELEASES and _claims(k) == ["data-chi-highflame-0"], "refused before any change"
    headless = _uninstall(installed, "--delete-data")
    assert headless.returncode == 2 and "--confirm u1" in headless.stderr
    done = _uninstall(installed, "--delete-data", "--confirm", "u1")
    assert done.returncode == 0, done.stderr
    assert _releases(k) == [] and _claims(k) == [] and _owned_secrets(k) == []
    assert [e["step_id"] for e in events(done.stdout) if e["event"] == "step_finished"][-1] == "delete-data"


def test_uninstall_killed_midway_carries_on(installed: dict[str, Any]) -> None:
    k = installed["kube"]
    killed = _uninstall(installed, HFWIZARD_TEST_KILL_AT="uninstall/highflame-authn:mid")
    assert killed.returncode == -9, killed.stderr
    assert _releases(k) == ["highflame-admin", "highflame-authn"], "redteam went before the kill"
    again = _uninstall(installed)
    assert again.returncode == 0, again.stderr
    evs = events(again.stdout)
    skipped = [e["step_id"] for e in evs if e["event"] == "step_finished" and e.get("status") == "skipped"]
    assert skipped == ["delete-objects", "uninstall/highflame-redteam"]
    assert _releases(k) == [] and _claims(k) == ["data-chi-highflame-0"]


def test_objects_hfwizard_applied_go_first_while_their_operator_still_runs(installed: dict[str, Any]) -> None:
    """ClickHouse's setup Job, backup CronJob, ServiceAccount and config Secret (applied outside Helm) are
    deleted before any release; the ClickHouse installations' kinds are not served here (no CRDs), so
    their deletion finds nothing, as after an install without ClickHouse."""
    from hfwizard.daytwo.uninstall import applied_objects

    k = installed["kube"]
    objects = applied_objects(installed["profile"])
    assert [o["kind"] for o in objects] == ["CronJob", "Job", "ClickHouseInstallation",
                                            "ClickHouseKeeperInstallation", "Secret", "ServiceAccount"]
    from kubernetes import client

    batch = client.BatchV1Api(k.api_client)
    for obj in objects:
        if obj["kind"] == "CronJob":
            batch.create_namespaced_cron_job(hp.NS, obj)
        elif obj["kind"] == "ServiceAccount":
            k.core.create_namespaced_service_account(hp.NS, obj)
    done = _uninstall(installed)
    assert done.returncode == 0, done.stderr
    logs = [e["line"] for e in events(done.stdout) if e["event"] == "log" and e["step_id"] == "delete-objects"]
    assert logs == ["CronJob clickhouse-backup deleted", "ServiceAccount clickhouse deleted"], logs
    assert batch.list_namespaced_cron_job(hp.NS).items == []
    assert "clickhouse" not in [a.metadata.name for a in k.core.list_namespaced_service_account(hp.NS).items]


def test_uninstall_is_refused_while_an_install_holds_the_lock(installed: dict[str, Any]) -> None:
    from hfwizard.engine.lock import InstallLock

    k = installed["kube"]

    async def hold_and_try() -> Any:
        async with InstallLock(installed["inst"], "u1", k.api_client, hp.NS, lease_seconds=30):
            return await asyncio.to_thread(_uninstall, installed)

    done = asyncio.run(hold_and_try())
    assert done.returncode == 4, done.stderr + done.stdout[-1000:]
    assert _releases(k) == RELEASES
