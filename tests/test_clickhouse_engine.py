"""ClickHouse through the engine: the real Altinity operator chart with the embedded Helm, then Keeper, server,
setup Job and backup CronJob applied server-side and reconciled by the emulated operator; the platform's core
services beside them (the collector after the setup Job)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard.engine.plan import CHARTS_STEP, GENERATED_STEP, build_plan
from hfwizard.profile_io import load_profile
from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator
from hfwizard.sandbox.emulator import ClusterThread
from tests.clickhouse_support import operator_chart, operator_crds
from tests.engine_support import emulated_cluster, events, hfwizard, journal_records, release_revisions, write_profile
from tests.fixtures.servers import PgServer

NS = "highflame"
CH_STEPS = ["clickhouse/crds", "clickhouse/secrets", "helm/clickhouse-operator", "clickhouse/identity",
            "clickhouse/keeper", "clickhouse/server", "clickhouse/setup", "clickhouse/backup"]


@pytest.fixture
def cluster() -> Iterator[ClusterThread]:
    operator_chart()  # skips, saying why, without Highflame's chart repository copy
    with emulated_cluster(ready_delay=0.2) as handle:
        yield handle


@pytest.fixture
def pg(pg17: PgServer) -> PgServer:
    return pg17


def _operator(cluster: ClusterThread) -> ClickHouseOperator:
    found = cluster.clickhouse
    assert found is not None, "the emulator process runs the ClickHouse operator beside the controller player"
    return found


def _profile(tmp_path: Path, cluster: ClusterThread, pg: PgServer, *, stall: int = 60,
             storage: str = "50Gi") -> Path:
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    path = write_profile(tmp_path, kc, stall=stall, pg=pg)
    text = path.read_text().replace("storageSize: 50Gi", f"storageSize: {storage}")
    path.write_text(text)
    return path


def _get(cluster: ClusterThread, api_version: str, kind: str, name: str, ns: str | None = NS) -> Any:
    return cluster.cluster.emulator.get_object(api_version, kind, ns, name)  # type: ignore[union-attr]


def _list(cluster: ClusterThread, api_version: str, kind: str, ns: str | None = NS) -> list[Any]:
    return list(cluster.cluster.emulator.list_objects(api_version, kind, ns))  # type: ignore[union-attr]


def _chi(cluster: ClusterThread) -> Any:
    return _get(cluster, "clickhouse.altinity.com/v1", "ClickHouseInstallation", "ch")


def _chk(cluster: ClusterThread) -> Any:
    return _get(cluster, "clickhouse-keeper.altinity.com/v1", "ClickHouseKeeperInstallation", "ch")


def _secret(cluster: ClusterThread, name: str) -> dict[str, str]:
    import base64

    found = _get(cluster, "v1", "Secret", name)
    assert found is not None, name
    return {k: base64.b64decode(v).decode() for k, v in found["data"].items()}


def _failed(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in evs if e["event"] == "step_failed"]


def test_plan_puts_the_clickhouse_chain_before_the_platform(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, tmp_path / "kubeconfig")).profile
    plan = build_plan(profile)
    ids = plan.ids
    assert [i for i in ids if i in CH_STEPS] == CH_STEPS
    assert ids.index("clickhouse/backup") < ids.index("helm/highflame-collector")
    assert "clickhouse/setup" in plan.step("helm/highflame-collector").depends_on
    assert "clickhouse/setup" not in plan.step("helm/highflame-admin").depends_on
    assert plan.step("clickhouse/server").depends_on[-2:] == ("clickhouse/identity", "clickhouse/secrets")
    assert plan.step("clickhouse/setup").depends_on[-2:] == ("clickhouse/server", "clickhouse/keeper")
    assert GENERATED_STEP in plan.step("clickhouse/secrets").depends_on
    operator = plan.step("helm/clickhouse-operator").release
    assert operator is not None and (operator.chart, operator.version) == ("altinity-clickhouse-operator", "0.25.6")
    # One chart cache: the charts step fetches the operator's chart too, from its own repository (or the mirror).
    assert ("altinity-clickhouse-operator", "0.25.6", "https://helm.altinity.com") in plan.step(CHARTS_STEP).charts


def test_install_runs_the_whole_clickhouse_chain(tmp_path: Path, cluster: ClusterThread, pg: PgServer) -> None:
    state = tmp_path / "state"
    profile = _profile(tmp_path, cluster, pg)
    run = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                   state=state, cwd=tmp_path, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    evs = events(run.stdout)
    finished = {e["step_id"] for e in evs if e["event"] == "step_finished"}
    assert set(CH_STEPS) <= finished
    # The operator, from the real chart, with its CRDs served.
    deployment = _get(cluster, "apps/v1", "Deployment", "clickhouse-operator-altinity-clickhouse-operator")
    assert deployment["status"]["readyReplicas"] == 1
    served = {c["spec"]["names"]["kind"]
              for c in _list(cluster, "apiextensions.k8s.io/v1", "CustomResourceDefinition", None)}
    assert set(operator_crds()) <= served
    assert release_revisions(cluster)["clickhouse-operator"] == [(1, "deployed")]
    # The CRDs are the chart's own crds/, applied by hfwizard's crds step (on upgrades too), the chart's
    # CRD hook Job (bitnami/kubectl:latest) off: no hook ran.
    crds = [c for c in _list(cluster, "apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
            if c["spec"]["group"].endswith("altinity.com")]
    assert len(crds) == 4 and all("hfwizard" in {m["manager"] for m in c["metadata"]["managedFields"]} for c in crds)
    helm_logs = " ".join(e["line"] for e in evs if e["event"] == "log" and e["step_id"] == "helm/clickhouse-operator")
    assert "crd-install" not in helm_logs and "Created resource" in helm_logs
    crd_record = next(r for r in journal_records(state) if r["event"] == "step_finished"
                      and r["step"] == "clickhouse/crds")
    assert crd_record["chart"] == "altinity-clickhouse-operator 0.25.6"
    assert sorted(r["name"] for r in crd_record["crds"]) == sorted(c["metadata"]["name"] for c in crds)
    # Keeper and server Completed, by the operator's own status.
    for obj in (_chk(cluster), _chi(cluster)):
        assert obj["status"]["status"] == "Completed", obj["status"]
    assert _chi(cluster)["status"]["hostsCompleted"] == 2
    # Applied under hfwizard's field manager.
    managers = {m["manager"] for m in _chi(cluster)["metadata"]["managedFields"]}
    assert "hfwizard" in managers
    job = _get(cluster, "batch/v1", "Job", "clickhouse-setup")
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    cron = _get(cluster, "batch/v1", "CronJob", "clickhouse-backup")
    assert cron["spec"]["schedule"] == load_profile(profile).profile.clickhouse.backup.schedule
    # The platform points at the operator's server Service, which exists.
    service = _get(cluster, "v1", "Service", "clickhouse-ch")
    assert {p["port"] for p in service["spec"]["ports"]} == {8123, 9000}
    config = _get(cluster, "v1", "ConfigMap", "highflame-collector")["data"]
    assert config["CLICKHOUSE_ENDPOINT"] == "tcp://clickhouse-ch.highflame.svc.cluster.local:9000"
    # The admin user's password is the one the collector reads (the platform's generated key).
    assert _secret(cluster, "clickhouse-secrets")["CH_ADMIN_PASSWORD"] == \
        _secret(cluster, "highflame-collector-env")["CLICKHOUSE_PASSWORD"]
    # The journal: each applied object's uid, resourceVersion and hash, and what uninstall does.
    recs = {r["step"]: r for r in journal_records(state) if r["event"] == "step_finished"}
    server = recs["clickhouse/server"]
    [chi] = server["objects"]
    assert (chi["object"], chi["uid"]) == ("chi/ch", _chi(cluster)["metadata"]["uid"])
    assert len(chi["hash"]) == 16 and chi["resourceVersion"]
    assert {(u["object"], u["action"]) for u in server["uninstall"]} == {
        ("chi/ch", "delete"), ("persistentvolumeclaims data-* of chi/ch", "keep")}


def test_killed_between_the_operator_and_the_installations_resumes_without_duplicates(
        tmp_path: Path, cluster: ClusterThread, pg: PgServer) -> None:
    state = tmp_path / "state"
    profile = _profile(tmp_path, cluster, pg)
    first = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight", state=state,
                     cwd=tmp_path, timeout=240, extra_env={"HFWIZARD_TEST_KILL_AT": "clickhouse/keeper:mid"})
    assert first.returncode == -9, first.stderr[-2000:]
    assert release_revisions(cluster)["clickhouse-operator"] == [(1, "deployed")]
    keeper_uid = _chk(cluster)["metadata"]["uid"]  # applied just before the kill
    assert _chi(cluster) is None

    second = hfwizard("resume", "--json", state=state, cwd=tmp_path, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:] + second.stdout[-3000:]
    evs = events(second.stdout)
    skipped = {e["step_id"] for e in evs if e["event"] == "step_finished" and e["status"] == "skipped"}
    assert "helm/clickhouse-operator" in skipped
    assert release_revisions(cluster)["clickhouse-operator"] == [(1, "deployed")], "the operator is not reinstalled"
    assert _chk(cluster)["metadata"]["uid"] == keeper_uid
    assert len(_list(cluster, "clickhouse-keeper.altinity.com/v1", "ClickHouseKeeperInstallation")) == 1
    assert len(_list(cluster, "clickhouse.altinity.com/v1", "ClickHouseInstallation")) == 1
    assert sorted(s["metadata"]["name"] for s in _list(cluster, "apps/v1", "StatefulSet")
                  if s["metadata"]["name"].startswith(("chi-", "chk-"))) == [
        "chi-ch-highflame-0-0", "chi-ch-highflame-0-1", "chk-ch-keeper-0-0"]
    assert len(_list(cluster, "v1", "PersistentVolumeClaim")) == 3
    assert _chi(cluster)["status"]["status"] == "Completed"


def test_a_changed_storage_size_on_resume_is_listed_and_applied(tmp_path: Path, cluster: ClusterThread,
                                                                pg: PgServer) -> None:
    state = tmp_path / "state"
    profile = _profile(tmp_path, cluster, pg)
    first = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight", state=state,
                     cwd=tmp_path, timeout=240, extra_env={"HFWIZARD_TEST_KILL_AT": "clickhouse/setup:started"})
    assert first.returncode == -9, first.stderr[-2000:]
    uid = _chi(cluster)["metadata"]["uid"]
    assert _chi(cluster)["metadata"]["generation"] == 1
    _profile(tmp_path, cluster, pg, storage="80Gi")
    # The saved answers are what a resume uses: change them as an operator editing the profile would.
    saved = state / "installs" / "canary" / "profile.yaml"
    saved.write_text(saved.read_text().replace("storageSize: 50Gi", "storageSize: 80Gi"))

    refused = hfwizard("resume", "--json", state=state, cwd=tmp_path)
    assert refused.returncode == 2
    assert 'clickhouse.storageSize: "50Gi" -> "80Gi"' in events(refused.stdout)[-1]["message"]

    second = hfwizard("resume", "--replan", "--json", state=state, cwd=tmp_path, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:] + second.stdout[-3000:]
    lines = [e["line"] for e in events(second.stdout) if e["event"] == "log" and e["step_id"] == "clickhouse/server"]
    change = "spec.templates.volumeClaimTemplates[0].spec.resources.requests.storage: 50Gi -> 80Gi"
    assert any(change in line and "chi/ch changes" in line for line in lines), lines
    chi = _chi(cluster)
    assert chi["metadata"]["uid"] == uid and chi["metadata"]["generation"] == 2
    claim = chi["spec"]["templates"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert claim == "80Gi" and chi["status"]["status"] == "Completed"
    assert len(_list(cluster, "clickhouse.altinity.com/v1", "ClickHouseInstallation")) == 1


def test_a_held_installation_stalls_the_install_naming_it(tmp_path: Path, cluster: ClusterThread,
                                                          pg: PgServer) -> None:
    _operator(cluster).hold("ch", "highflame")
    state = tmp_path / "state"
    run = hfwizard("install", "--profile", str(_profile(tmp_path, cluster, pg, stall=5)), "--yes", "--json",
                   "--skip-preflight", state=state, cwd=tmp_path, timeout=240)
    assert run.returncode == 1, run.stderr[-3000:] + run.stdout[-3000:]
    # The glob holds both; Keeper and the servers come up side by side, so each stalls, named on its own.
    failed = {f["step_id"]: f for f in _failed(events(run.stdout))}
    assert set(failed) == {"clickhouse/keeper", "clickhouse/server"}, failed
    assert failed["clickhouse/keeper"]["error"].startswith("chk/ch is stuck: stalled, no progress for 5s: "
                                                           "ClickHouseKeeperInstallation highflame/ch: ")
    assert failed["clickhouse/server"]["error"].startswith("chi/ch is stuck: stalled, no progress for 5s: "
                                                           "ClickHouseInstallation highflame/ch: ")
    assert all("hosts completed" in f["error"] for f in failed.values())
    recs = [r for r in journal_records(state) if r["event"] == "step_failed"]
    assert sum(json.dumps(r).count("chk/ch is stuck") for r in recs) == 1
    assert sum(json.dumps(r).count("chi/ch is stuck") for r in recs) == 1


def test_a_held_server_installation_is_named_with_its_status(tmp_path: Path, cluster: ClusterThread,
                                                             pg: PgServer) -> None:
    _operator(cluster).hold("chi/ch", "highflame")  # the server only: Keeper completes
    run = hfwizard("install", "--profile", str(_profile(tmp_path, cluster, pg, stall=5)), "--yes", "--json",
                   "--skip-preflight", state=tmp_path / "state", cwd=tmp_path, timeout=240)
    assert run.returncode == 1, run.stderr[-3000:] + run.stdout[-3000:]
    [failed] = _failed(events(run.stdout))
    assert failed["step_id"] == "clickhouse/server"
    assert failed["error"].startswith("chi/ch is stuck: stalled, no progress for 5s: "
                                      "ClickHouseInstallation highflame/ch: InProgress"), failed


def _apply_as(kubeconfig: Path, obj: dict[str, Any], manager: str) -> None:
    """Server-side apply under another field manager (an operator's kubectl), forcing."""
    from kubernetes import config

    from hfwizard.engine.kube import object_path

    api = config.new_client_from_config(str(kubeconfig))
    meta = obj["metadata"]
    api.call_api(object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]), "PATCH",
                 header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
                 query_params=[("fieldManager", manager), ("force", "true")], body=obj,
                 auth_settings=["BearerToken"], response_types_map={}, _return_http_data_only=True)


def _config_secret(text: str) -> dict[str, Any]:
    import base64

    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clickhouse-backup-config", "namespace": NS},
            "data": {"backup-config.yml": base64.b64encode(text.encode()).decode()}}


def test_fields_another_manager_owns_are_taken_back_only_on_objects_hfwizard_applied(
        tmp_path: Path, cluster: ClusterThread, pg: PgServer) -> None:
    async def namespace(c: Any) -> None:
        await c.add_namespace(NS)

    cluster.call(namespace)
    profile = _profile(tmp_path, cluster, pg)
    kubeconfig = tmp_path / "kubeconfig"
    _apply_as(kubeconfig, _config_secret("someone else's\n"), "kubectl")
    state = tmp_path / "state"
    refused = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight", state=state,
                       cwd=tmp_path, timeout=240)
    assert refused.returncode == 1
    [failed] = _failed(events(refused.stdout))
    assert failed["step_id"] == "clickhouse/identity"
    assert failed["error"].startswith("secret/clickhouse-backup-config exists with fields another manager owns")

    cluster.call(lambda c: c.emulator.delete_object("v1", "Secret", NS, "clickhouse-backup-config"))
    done = hfwizard("resume", "--json", state=state, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    ours = _get(cluster, "v1", "Secret", "clickhouse-backup-config")["data"]["backup-config.yml"]

    _apply_as(kubeconfig, _config_secret("edited by hand\n"), "kubectl")
    again = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight", state=state,
                     cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:] + again.stdout[-3000:]
    lines = [e["line"] for e in events(again.stdout) if e["event"] == "log" and e["step_id"] == "clickhouse/identity"]
    assert any(line.startswith("secret/clickhouse-backup-config: taking back fields") for line in lines), lines
    assert _get(cluster, "v1", "Secret", "clickhouse-backup-config")["data"]["backup-config.yml"] == ours
