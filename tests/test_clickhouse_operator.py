"""The real Altinity operator chart through the embedded Helm into the emulated cluster, then hfwizard's
Keeper and server installations applied server-side and reconciled by the emulated operator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.platform import clickhouse as ch
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator
from hfwizard.sandbox.emulator import ClusterThread, EmulatedCluster
from tests.clickhouse_support import operator_chart, operator_crds, users_secret

NS = "highflame"
PROFILE = InstallProfile.model_validate({
    "target": {"namespace": NS},
    "clickhouse": {"replicas": 2, "storageSize": "64Gi",
                   "backup": {"provider": "s3", "bucket": "hf-backups", "region": "eu-west-1",
                              "roleArn": "arn:aws:iam::123456789012:role/ch-backup"}},
})


@pytest.fixture
def operator(cluster: ClusterThread) -> Iterator[ClickHouseOperator]:
    """The emulated ClickHouse operator the emulator runs beside the controller player."""
    async def namespace(c: EmulatedCluster) -> None:
        await c.add_namespace(NS)
        await c.emulator.upsert({**users_secret(), "metadata": {"name": ch.SECRET_NAME, "namespace": NS}})

    cluster.call(namespace)
    assert cluster.clickhouse is not None
    yield cluster.clickhouse


def _install_operator_chart(kubeconfig: Path) -> None:
    async def install() -> None:
        release = await EmbeddedHelm(kubeconfig).install_or_upgrade(
            "clickhouse-operator", operator_chart(), "clickhouse-operator", {}, create_namespace=True, timeout_s=120)
        assert (release.status, release.chart) == ("deployed", "altinity-clickhouse-operator-0.25.6")

    asyncio.run(install())


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """Server-side apply under hfwizard's field manager, as the engine applies objects."""
    group_version = obj["apiVersion"]
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = obj["kind"].lower() + "s"
    path = f"{root}/namespaces/{obj['metadata']['namespace']}/{plural}/{obj['metadata']['name']}"
    api.call_api(path, "PATCH", header_params={"Content-Type": "application/apply-patch+yaml",
                                               "Accept": "application/json"},
                 query_params=[("fieldManager", "hfwizard"), ("force", "true")],
                 body=obj, auth_settings=["BearerToken"], response_types_map={}, _return_http_data_only=True)


def _read(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, obj["metadata"]["namespace"], obj["kind"].lower() + "s", obj["metadata"]["name"])
    return found


def _until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s")
        time.sleep(0.1)


def test_operator_chart_then_keeper_and_server_complete(
    cluster: ClusterThread, kubeconfig: Path, operator: ClickHouseOperator
) -> None:
    _install_operator_chart(kubeconfig)
    api = config.new_client_from_config(str(kubeconfig))
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deployment = apps.read_namespaced_deployment("clickhouse-operator-altinity-clickhouse-operator",
                                                 "clickhouse-operator")
    assert deployment.status.ready_replicas == 1
    # The chart's crds/ were installed by Helm: the API serves both installation kinds.
    served = {r.kind for r in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
              for r in [r.spec.names]}
    assert set(operator_crds()) <= served

    chk, chi = ch.keeper_installation(PROFILE), ch.clickhouse_installation(PROFILE)
    assert chk["metadata"]["name"] == chi["metadata"]["name"] == "ch"
    # In the plan's order, each waited on as the plan says.
    for applied in ch.applied_objects(PROFILE):
        _apply(api, applied.obj)
        if applied.wait == "installation":
            _until(lambda obj=applied.obj: ch.readiness(_read(api, obj))[0])
    job = _until(lambda: _job_complete(api))
    assert job.metadata.name == "clickhouse-setup"
    cron = client.BatchV1Api(api).read_namespaced_cron_job("clickhouse-backup", NS)
    assert cron.spec.schedule == PROFILE.clickhouse.backup.schedule
    account = core.read_namespaced_service_account("clickhouse", NS)
    assert account.metadata.annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ch-backup"}
    assert "backup-config.yml" in core.read_namespaced_secret("clickhouse-backup-config", NS).data
    assert ch.readiness(_read(api, chi)) == (
        True, "ClickHouseInstallation highflame/ch: Completed, 2/2 hosts completed, last action: reconcile completed")
    status = _read(api, chi)["status"]
    assert (status["hosts"], status["shards"], status["replicas"], status["chop-version"]) == (2, 1, 2, "0.25.6")
    assert status["endpoint"] == "clickhouse-ch.highflame.svc.cluster.local"

    sts = {s.metadata.name: s for s in apps.list_namespaced_stateful_set(NS).items}
    assert set(sts) == {"chi-ch-highflame-0-0", "chi-ch-highflame-0-1", "chk-ch-keeper-0-0"}
    labels = sts["chi-ch-highflame-0-1"].metadata.labels
    assert {k: labels[k] for k in ("clickhouse.altinity.com/chi", "clickhouse.altinity.com/cluster",
                                   "clickhouse.altinity.com/shard", "clickhouse.altinity.com/replica")} == {
        "clickhouse.altinity.com/chi": "ch", "clickhouse.altinity.com/cluster": "highflame",
        "clickhouse.altinity.com/shard": "0", "clickhouse.altinity.com/replica": "1"}
    containers = sts["chi-ch-highflame-0-0"].spec.template.spec.containers
    assert [c.name for c in containers] == ["clickhouse", "clickhouse-backup"]
    # The sidecar sees the server's data: the operator mounts the data volume in every container.
    assert all(("data", "/var/lib/clickhouse") in {(m.name, m.mount_path) for m in c.volume_mounts}
               for c in containers)
    keeper = sts["chk-ch-keeper-0-0"].spec.template.spec.containers[0]
    assert ("keeper-data", "/var/lib/clickhouse-keeper") in {(m.name, m.mount_path) for m in keeper.volume_mounts}
    assert sts["chk-ch-keeper-0-0"].metadata.labels["clickhouse-keeper.altinity.com/chk"] == "ch"

    services = {s.metadata.name: s for s in core.list_namespaced_service(NS).items}
    assert {"clickhouse-ch", "keeper-ch", "chi-ch-highflame-0-0", "chk-ch-keeper-0-0"} <= set(services)
    assert {p.port for p in services["clickhouse-ch"].spec.ports} == {8123, 9000}
    assert {p.port for p in services["keeper-ch"].spec.ports} == {2181, 9444}
    endpoints = ch.service_endpoints(PROFILE)
    assert endpoints.service in services and endpoints.host == f"{endpoints.service}.{NS}.svc"

    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert set(claims) == {"data-chi-ch-highflame-0-0-0", "data-chi-ch-highflame-0-1-0",
                           "keeper-data-chk-ch-keeper-0-0-0"}
    assert claims["data-chi-ch-highflame-0-0-0"].spec.resources.requests == {"storage": "64Gi"}
    assert claims["keeper-data-chk-ch-keeper-0-0-0"].spec.resources.requests == {"storage": "20Gi"}

    # Re-applying the same objects (a resume) changes nothing: no new generation, no duplicate hosts.
    for applied in ch.applied_objects(PROFILE):
        assert ch.changes(_read_any(api, applied.obj), applied.obj) == [], applied.obj["kind"]
        _apply(api, applied.obj)
    assert _read(api, chi)["metadata"]["generation"] == 1
    assert len(apps.list_namespaced_stateful_set(NS).items) == 3
    assert len(core.list_namespaced_persistent_volume_claim(NS).items) == 3
    # A bigger volume in the profile is a change, listed before it is applied.
    bigger = PROFILE.model_copy(deep=True)
    bigger.clickhouse.storage_size = "100Gi"
    assert ch.changes(_read(api, chi), ch.clickhouse_installation(bigger)) == [
        "spec.templates.volumeClaimTemplates[0].spec.resources.requests.storage: 64Gi -> 100Gi"]


def _apply_identity(api: client.ApiClient) -> None:
    """The ServiceAccount and backup config the server pods mount (the plan applies them first)."""
    for applied in ch.applied_objects(PROFILE):
        if applied.step == "clickhouse/identity":
            _apply(api, applied.obj)


def _job_complete(api: client.ApiClient) -> Any:
    job = client.BatchV1Api(api).read_namespaced_job("clickhouse-setup", NS)
    done = any(c.type == "Complete" and c.status == "True" for c in (job.status.conditions or []))
    return job if done else None


def _read_any(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    group_version = obj["apiVersion"]
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = f"{root}/namespaces/{obj['metadata']['namespace']}/{obj['kind'].lower()}s/{obj['metadata']['name']}"
    found: dict[str, Any] = api.call_api(path, "GET", header_params={"Accept": "application/json"},
                                         auth_settings=["BearerToken"], response_types_map={200: "object"},
                                         _return_http_data_only=True)
    return found


def test_held_back_installation_stays_in_progress(
    cluster: ClusterThread, kubeconfig: Path, operator: ClickHouseOperator
) -> None:
    _install_operator_chart(kubeconfig)
    api = config.new_client_from_config(str(kubeconfig))
    chk = ch.keeper_installation(PROFILE)
    _apply(api, chk)
    _until(lambda: ch.readiness(_read(api, chk))[0])
    keeper_version = _read(api, chk)["metadata"]["resourceVersion"]
    operator.hold("ch", NS)  # the glob matches both names; the finished Keeper must stay as it is
    _apply_identity(api)
    chi = ch.clickhouse_installation(PROFILE)
    _apply(api, chi)
    # Its hosts come up, but the operator never reports the installation done.
    _until(lambda: len(client.AppsV1Api(api).list_namespaced_stateful_set(NS).items) == 3)
    _until(lambda: (_read(api, chi).get("status") or {}).get("hostsCompleted") == 1)
    # The install's watch sees no progress and reports the stall, naming the installation.
    watch = ch.InstallationWatch(stall_seconds=1.0)
    started = time.monotonic()
    while (progress := watch.observe(_read(api, chi), time.monotonic())).failure is None:
        assert not progress.ready and time.monotonic() - started < 10
        time.sleep(0.2)
    assert progress.failure.startswith("stalled, no progress for 1s: ClickHouseInstallation highflame/ch: "
                                       "InProgress, 1/2 hosts completed"), progress.failure
    operator.release("ch", NS)
    _until(lambda: ch.readiness(_read(api, chi))[0])
    assert _read(api, chk)["metadata"]["resourceVersion"] == keeper_version  # no detour through InProgress


def test_failing_installation_is_aborted_with_its_error(
    cluster: ClusterThread, kubeconfig: Path, operator: ClickHouseOperator
) -> None:
    _install_operator_chart(kubeconfig)
    api = config.new_client_from_config(str(kubeconfig))
    operator.fail("ch", NS, message="FAILED to reconcile StatefulSet chi-ch-highflame-0-1: quota exceeded")
    _apply_identity(api)
    chi = ch.clickhouse_installation(PROFILE)
    _apply(api, chi)
    found = _until(lambda: ch.aborted(_read(api, chi)))
    assert found == ("ClickHouseInstallation highflame/ch: the operator aborted it "
                     "(FAILED to reconcile StatefulSet chi-ch-highflame-0-1: quota exceeded)")
    operator.heal("ch", NS)
    _until(lambda: ch.readiness(_read(api, chi))[0])


def test_without_a_running_operator_nothing_reconciles(
    cluster: ClusterThread, kubeconfig: Path, operator: ClickHouseOperator
) -> None:
    """CRDs alone (no operator Deployment): an installation gets no status and no hosts."""
    async def crds(c: EmulatedCluster) -> None:
        for crd in operator_crds().values():
            await c.emulator.upsert(dict(crd))

    cluster.call(crds)
    api = config.new_client_from_config(str(kubeconfig))
    chk = ch.keeper_installation(PROFILE)
    _apply(api, chk)
    time.sleep(1.0)
    assert "status" not in _read(api, chk)
    assert client.AppsV1Api(api).list_namespaced_stateful_set(NS).items == []
    assert ch.readiness(_read(api, chk)) == (
        False, "ClickHouseKeeperInstallation highflame/ch: not yet picked up by the operator, 0/1 hosts completed")
