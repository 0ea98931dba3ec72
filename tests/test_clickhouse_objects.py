"""ClickHouse objects from the profile: valid against the real operator's CRDs, backups per provider
with identity first and static keys only inside a Secret, readiness read from the operator's status."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from hfwizard.platform import clickhouse as ch
from hfwizard.platform.secretspec import materialize
from hfwizard.profile import InstallProfile
from hfwizard.secrets import resolve
from tests.clickhouse_support import crd_schema, operator_crds, unknown_fields, validate

ROLE = "arn:aws:iam::123456789012:role/highflame-clickhouse-backup"
GSA = "ch-backup@acme-prod-123.iam.gserviceaccount.com"
AZ_CLIENT = "0f0e0d0c-0b0a-4090-8070-605040302010"
CANARIES = {
    "HFW_CH_AK": "AKIACANARYCH0000001",
    "HFW_CH_SK": "canary-ch-secret-key-7e1d",
    "HFW_CH_GCS": '{"type": "service_account", "private_key": "canary-gcs-key-91ab"}',
    "HFW_CH_AZ": "canary-azure-account-key-55aa",
}


def _profile(clickhouse: dict[str, Any], **top: Any) -> InstallProfile:
    return InstallProfile.model_validate({"target": {"namespace": "highflame", "release": "highflame"},
                                          "clickhouse": clickhouse, **top})


PROFILES = {
    "s3-irsa": _profile({"backup": {"provider": "s3", "bucket": "acme-hf-backups", "region": "eu-west-1",
                                    "prefix": "prod/clickhouse/", "roleArn": ROLE}}),
    "s3-keys": _profile({"backup": {"provider": "s3", "bucket": "acme-hf-backups", "region": "us-east-2",
                                    "accessKeyId": "env:HFW_CH_AK", "secretAccessKey": "env:HFW_CH_SK"}}),
    "gcs-wi": _profile({"backup": {"provider": "gcs", "bucket": "acme-hf-backups", "gcpServiceAccount": GSA}}),
    "gcs-key": _profile({"backup": {"provider": "gcs", "bucket": "acme-hf-backups",
                                    "credentials": "env:HFW_CH_GCS"}}),
    "azure-wi": _profile({"backup": {"provider": "azure", "account": "acmehf", "bucket": "ch-backups",
                                     "azureClientId": AZ_CLIENT}}),
    "azure-key": _profile({"backup": {"provider": "azure", "account": "acmehf", "bucket": "ch-backups",
                                      "credentials": "env:HFW_CH_AZ"}}),
    "sharded-mirror": _profile({"shards": 2, "replicas": 3, "keeperReplicas": 3, "storageClass": "gp3",
                                "storageSize": "512Gi", "imageRegistry": "registry.acme.internal",
                                "backup": {"provider": "s3", "bucket": "acme-hf-backups", "roleArn": ROLE}}),
}


def _objects(profile: InstallProfile) -> list[dict[str, Any]]:
    config = ch.backup_config(profile)
    return [ch.keeper_installation(profile), ch.clickhouse_installation(profile), ch.setup_job(profile),
            ch.backup_cronjob(profile), ch.service_account(profile), config.secret]


def test_the_chart_carries_the_four_crds_with_schemas() -> None:
    assert set(operator_crds()) == {"ClickHouseInstallation", "ClickHouseInstallationTemplate",
                                    "ClickHouseKeeperInstallation", "ClickHouseOperatorConfiguration"}
    assert "configuration" in crd_schema("ClickHouseInstallation")["properties"]["spec"]["properties"]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_installations_validate_against_the_operator_crds(name: str) -> None:
    profile = PROFILES[name]
    chk, chi = ch.keeper_installation(profile), ch.clickhouse_installation(profile)
    validate(chk)
    validate(chi)
    assert (chi["apiVersion"], chk["apiVersion"]) == (ch.CHI_API_VERSION, ch.CHK_API_VERSION)
    layout = chi["spec"]["configuration"]["clusters"][0]["layout"]
    assert layout == {"shardsCount": profile.clickhouse.shards, "replicasCount": profile.clickhouse.replicas}
    assert ch.expected_hosts(chi) == profile.clickhouse.shards * profile.clickhouse.replicas
    assert chi["spec"]["configuration"]["zookeeper"]["nodes"] == [{"host": "keeper-ch.highflame.svc", "port": 2181}]


def test_the_schema_check_can_fail() -> None:
    """The validation catches a wrong type, and a misspelt field the API server would silently drop."""
    chi = ch.clickhouse_installation(PROFILES["s3-irsa"])
    chi["spec"]["configuration"]["clusters"][0]["layout"]["shardsCount"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate(chi)
    chi = ch.clickhouse_installation(PROFILES["s3-irsa"])
    chi["spec"]["configuration"]["clusters"][0]["layuot"] = {"shardsCount": 2}
    assert unknown_fields(chi["spec"], crd_schema("ClickHouseInstallation")["properties"]["spec"]) == [
        ".configuration.clusters[0].layuot"]


def test_sizes_images_and_storage_follow_the_profile() -> None:
    profile = PROFILES["sharded-mirror"]
    chi, chk = ch.clickhouse_installation(profile), ch.keeper_installation(profile)
    pod = chi["spec"]["templates"]["podTemplates"][0]["spec"]
    server, sidecar = pod["containers"]
    assert server["image"] == "registry.acme.internal/clickhouse/clickhouse-server:25.10.2"
    assert sidecar["image"] == "registry.acme.internal/altinity/clickhouse-backup:2.6.39"
    assert server["resources"] == {"requests": {"cpu": "4", "memory": "12Gi"}, "limits": {"memory": "12Gi"}}
    data = chi["spec"]["templates"]["volumeClaimTemplates"][0]["spec"]
    assert data["resources"]["requests"]["storage"] == "512Gi" and data["storageClassName"] == "gp3"
    keeper = chk["spec"]["templates"]["volumeClaimTemplates"][0]["spec"]
    assert keeper["resources"]["requests"]["storage"] == "20Gi"
    assert chk["spec"]["configuration"]["clusters"][0]["layout"] == {"replicasCount": 3}
    assert chk["spec"]["templates"]["podTemplates"][0]["spec"]["containers"][0]["image"] == (
        "registry.acme.internal/clickhouse/clickhouse-keeper:25.10.2")
    large = _profile({"backup": {"bucket": "b-backups"}}, sizing={"preset": "large"})
    assert ch.server_resources(large)["requests"] == {"cpu": "8", "memory": "24Gi"}
    own = _profile({"cpu": "6", "memory": "20Gi", "backup": {"bucket": "b-backups"}}, sizing={"preset": "large"})
    assert ch.server_resources(own)["limits"] == {"memory": "20Gi"}
    assert ch.operator_values(profile)["operator"]["image"]["repository"] == (
        "registry.acme.internal/altinity/clickhouse-operator")
    # Without a mirror only the CRD hook is turned off (the crds step applies the chart's CRDs), and no image
    # of the hook is left to mirror.
    assert ch.operator_values(PROFILES["s3-irsa"]) == {"crdHook": {"enabled": False}}
    assert "crdHook" not in json.dumps(ch.operator_values(profile)).replace('"crdHook": {"enabled": false}', "")


def test_users_read_their_passwords_from_the_generated_secret() -> None:
    spec = ch.clickhouse_secret_spec()
    assert spec.name == "clickhouse-secrets"
    assert set(spec.generated_keys) == {"CH_READONLY_PASSWORD", "CH_BACKUP_PASSWORD"}
    # The admin's is the platform's generated key, the one collector and observatory read: one source.
    assert spec.references == ["k8s:highflame-platform-secrets/clickhouse-admin-password"]
    assert spec.entries["CH_ADMIN_PASSWORD"].ref == spec.references[0]
    users = ch.clickhouse_installation(PROFILES["s3-irsa"])["spec"]["configuration"]["users"]
    assert {k: v for k, v in users.items() if k.endswith("k8s_secret_password")} == {
        "highflame_admin/k8s_secret_password": "clickhouse-secrets/CH_ADMIN_PASSWORD",
        "highflame_readonly/k8s_secret_password": "clickhouse-secrets/CH_READONLY_PASSWORD",
        "highflame_backup/k8s_secret_password": "clickhouse-secrets/CH_BACKUP_PASSWORD",
    }
    assert users["highflame_readonly/profile"] == "readonly"


def _backup_doc(profile: InstallProfile) -> dict[str, Any]:
    config = ch.backup_config(profile)
    from_secret = base64.b64decode(config.secret["data"]["backup-config.yml"]).decode()
    assert from_secret == config.text
    doc: dict[str, Any] = yaml.safe_load(config.text)
    return doc


def test_s3_backup_config_uses_the_irsa_role() -> None:
    profile = PROFILES["s3-irsa"]
    doc = _backup_doc(profile)
    assert doc["general"]["remote_storage"] == "s3"
    assert doc["api"]["listen"] == "127.0.0.1:7171"  # deletes backups, takes no password: loopback only
    assert doc["s3"] == {"bucket": "acme-hf-backups", "region": "eu-west-1", "path": "prod/clickhouse",
                         "compression_format": "tar"}
    config = ch.backup_config(profile)
    assert config.credentials is None and config.env == []
    assert ch.service_account(profile)["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE}
    assert ROLE in config.identity


def test_gcs_backup_config_uses_workload_identity() -> None:
    profile = PROFILES["gcs-wi"]
    doc = _backup_doc(profile)
    assert doc["general"]["remote_storage"] == "gcs"
    assert doc["gcs"]["bucket"] == "acme-hf-backups" and doc["gcs"]["sa_email"] == GSA
    assert doc["gcs"]["path"] == "clickhouse"
    assert ch.service_account(profile)["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": GSA}
    assert ch.backup_config(profile).credentials is None


def test_azure_backup_config_uses_the_managed_identity() -> None:
    profile = PROFILES["azure-wi"]
    doc = _backup_doc(profile)
    assert doc["general"]["remote_storage"] == "azblob"
    assert doc["azblob"]["account_name"] == "acmehf" and doc["azblob"]["container"] == "ch-backups"
    assert doc["azblob"]["use_managed_identity"] is True
    assert ch.service_account(profile)["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": AZ_CLIENT}
    pod_meta = ch.clickhouse_installation(profile)["spec"]["templates"]["podTemplates"][0]["metadata"]
    assert pod_meta["labels"] == {"azure.workload.identity/use": "true"}


@pytest.mark.parametrize(("name", "keys"), [
    ("s3-keys", {"S3_ACCESS_KEY": "HFW_CH_AK", "S3_SECRET_KEY": "HFW_CH_SK"}),
    ("gcs-key", {"GCS_CREDENTIALS_JSON": "HFW_CH_GCS"}),
    ("azure-key", {"AZBLOB_ACCOUNT_KEY": "HFW_CH_AZ"}),
])
def test_static_keys_reach_only_the_credentials_secret(
    name: str, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in CANARIES.items():
        monkeypatch.setenv(var, value)
    profile = PROFILES[name]
    config = ch.backup_config(profile)
    assert config.credentials is not None and config.credentials.name == "clickhouse-backup-credentials"
    assert {k: e.ref for k, e in config.credentials.entries.items()} == {env: f"env:{var}" for env, var in keys.items()}
    # What the engine writes into the Secret: the resolved references, and nowhere else.
    secret_data = materialize(config.credentials, lambda ref: resolve(ref).reveal())
    assert set(secret_data.values()) == {CANARIES[var] for var in keys.values()}
    everything_else = json.dumps(_objects(profile)) + config.text + repr(config)
    for value in CANARIES.values():
        assert value not in everything_else
    sidecar = ch.clickhouse_installation(profile)["spec"]["templates"]["podTemplates"][0]["spec"]["containers"][1]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in sidecar["env"] if "valueFrom" in e}
    for env in keys:
        assert refs[env] == {"name": "clickhouse-backup-credentials", "key": env}
    assert ch.service_account(profile)["metadata"].get("annotations") is None


def test_a_k8s_reference_is_read_from_its_own_secret() -> None:
    profile = _profile({"backup": {"provider": "azure", "account": "acmehf", "bucket": "ch-backups",
                                   "credentials": "k8s:azure-storage/key"}})
    config = ch.backup_config(profile)
    assert config.credentials is None
    assert config.env == [{"name": "AZBLOB_ACCOUNT_KEY",
                           "valueFrom": {"secretKeyRef": {"name": "azure-storage", "key": "key"}}}]


@pytest.mark.parametrize("backup", [
    {"provider": "gcs", "bucket": "b-backups", "roleArn": ROLE},
    {"provider": "s3", "bucket": "b-backups", "roleArn": ROLE, "accessKeyId": "env:A", "secretAccessKey": "env:B"},
    {"provider": "s3", "bucket": "b-backups", "accessKeyId": "env:A"},
    {"provider": "azure", "bucket": "b-backups", "azureClientId": AZ_CLIENT, "credentials": "env:K"},
])
def test_the_profile_refuses_mixed_ways_into_the_bucket(backup: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _profile({"backup": backup})


def test_setup_job_waits_creates_the_database_and_sets_ttls() -> None:
    job = ch.setup_job(PROFILES["s3-irsa"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    env = {e["name"]: e for e in container["env"]}
    assert env["CH_HOST"]["value"] == "clickhouse-ch.highflame.svc"
    assert env["CH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "clickhouse-secrets",
                                                               "key": "CH_ADMIN_PASSWORD"}
    assert "query_log" in env["LOG_TABLES"]["value"] and env["TTL_DAYS"]["value"] == "3"
    assert ":8123/ping" in script and "CREATE DATABASE IF NOT EXISTS" in script and "MODIFY TTL" in script
    assert "--password" not in script  # the password goes through a 0600 client config, never argv
    subprocess.run(["bash", "-n", "-c", script], check=True)


def test_backup_cronjob_runs_on_the_schedule_and_keeps_backup_keep() -> None:
    profile = _profile({"shards": 2, "backup": {"bucket": "b-backups", "roleArn": ROLE,
                                                "schedule": "0 */12 * * *", "retentionDays": 7}})
    cron = ch.backup_cronjob(profile)
    assert cron["spec"]["schedule"] == "0 */12 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["BACKUP_KEEP"]["value"] == "14" and env["SHARDS"]["value"] == "2"
    assert env["CH_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "CH_BACKUP_PASSWORD"
    subprocess.run(["bash", "-n", "-c", container["command"][-1]], check=True)
    kept = _profile({"backup": {"bucket": "b-backups", "keep": 5}})
    assert ch.backup_keep(kept) == 5
    assert ch.backup_keep(_profile({"backup": {"bucket": "b-backups", "schedule": "30 2 * * 1-5"}})) == 14


def test_service_endpoints_point_at_the_operator_service() -> None:
    endpoints = ch.service_endpoints(PROFILES["s3-irsa"])
    assert endpoints.service == "clickhouse-ch"
    assert endpoints.host == "clickhouse-ch.highflame.svc"
    assert endpoints.endpoint == "tcp://clickhouse-ch.highflame.svc:9000"
    env = {e["name"]: e for e in endpoints.env()}
    assert env["CLICKHOUSE_DATABASE"]["value"] == "highflame"
    assert env["CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "clickhouse-secrets",
                                                                       "key": "CH_ADMIN_PASSWORD"}
    other = _profile({"namespace": "clickhouse", "installation": "javelin", "backup": {"bucket": "b-backups"}})
    assert ch.service_endpoints(other).host == "clickhouse-javelin.clickhouse.svc"


def _with_status(obj: dict[str, Any], status: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "generation": generation}, "status": status}


def test_readiness_reads_the_operator_status() -> None:
    chi = ch.clickhouse_installation(PROFILES["sharded-mirror"])  # 2 x 3 = 6 hosts
    done = {"status": "Completed", "hosts": 6, "hostsCompleted": 6, "generation": 1, "action": "reconcile done"}
    for status in (done, {"status": "InProgress", "hostsCompleted": 4, "action": "create StatefulSet"},
                   {"status": "Aborted", "error": "FAILED to reconcile StatefulSet chi-ch-highflame-1-2"}):
        jsonschema.validate(status, crd_schema("ClickHouseInstallation")["properties"]["status"])
    assert ch.readiness(_with_status(chi, done)) == (
        True, "ClickHouseInstallation highflame/ch: Completed, 6/6 hosts completed, last action: reconcile done")
    ready, summary = ch.readiness(_with_status(chi, {"status": "InProgress", "hostsCompleted": 4,
                                                     "action": "create StatefulSet"}))
    assert not ready and summary == (
        "ClickHouseInstallation highflame/ch: InProgress, 4/6 hosts completed, last action: create StatefulSet")
    aborted = _with_status(chi, {"status": "Aborted", "error": "FAILED to reconcile StatefulSet chi-ch-highflame-1-2"})
    assert not ch.readiness(aborted)[0]
    assert ch.aborted(aborted) == ("ClickHouseInstallation highflame/ch: the operator aborted it "
                                   "(FAILED to reconcile StatefulSet chi-ch-highflame-1-2)")
    assert ch.aborted(_with_status(chi, done)) is None
    # A Completed from before the latest change, or with hosts missing, is not ready.
    assert not ch.readiness(_with_status(chi, done, generation=2))[0]
    assert not ch.readiness(_with_status(chi, {**done, "hosts": 5, "hostsCompleted": 5}))[0]
    fresh = ch.keeper_installation(PROFILES["s3-irsa"])
    assert ch.readiness(fresh) == (
        False, "ClickHouseKeeperInstallation highflame/ch: not yet picked up by the operator, 0/1 hosts completed")


def test_watch_reports_a_stall_naming_the_installation_and_an_abort_at_once() -> None:
    chi = ch.clickhouse_installation(PROFILES["s3-irsa"])
    watch = ch.InstallationWatch(stall_seconds=30)
    moving = {"status": "InProgress", "hostsCompleted": 0, "action": "create StatefulSet chi-ch-highflame-0-0"}
    assert watch.observe(_with_status(chi, moving), 0.0).failure is None
    assert watch.observe(_with_status(chi, moving), 29.0).failure is None
    # Progress resets the clock; then nothing changes for 30 s.
    later = {**moving, "hostsCompleted": 1}
    assert watch.observe(_with_status(chi, later), 29.5).failure is None
    assert watch.observe(_with_status(chi, later), 59.0).failure is None
    stalled = watch.observe(_with_status(chi, later), 60.0)
    assert stalled.failure == ("stalled, no progress for 30s: ClickHouseInstallation highflame/ch: InProgress, "
                               "1/2 hosts completed, last action: create StatefulSet chi-ch-highflame-0-0")
    gave_up = ch.InstallationWatch(stall_seconds=30).observe(
        _with_status(chi, {"status": "Aborted", "error": "no Keeper"}), 0.0)
    assert gave_up.failure == "ClickHouseInstallation highflame/ch: the operator aborted it (no Keeper)"
    done = {"status": "Completed", "hosts": 2, "hostsCompleted": 2}
    assert ch.InstallationWatch(stall_seconds=30).observe(_with_status(chi, done), 0.0).ready


def test_changes_list_what_a_new_profile_would_change() -> None:
    before = ch.clickhouse_installation(PROFILES["s3-irsa"])
    before["metadata"].update({"resourceVersion": "17", "uid": "u-1", "generation": 3})
    before["status"] = {"status": "Completed"}
    assert ch.changes(before, ch.clickhouse_installation(PROFILES["s3-irsa"])) == []
    bigger = PROFILES["s3-irsa"].model_copy(deep=True)
    bigger.clickhouse.storage_size = "1Ti"
    bigger.clickhouse.replicas = 3
    assert ch.changes(before, ch.clickhouse_installation(bigger)) == [
        "spec.configuration.clusters[0].layout.replicasCount: 2 -> 3",
        "spec.templates.volumeClaimTemplates[0].spec.resources.requests.storage: 200Gi -> 1Ti",
    ]
    assert ch.changes(None, before) == ["ClickHouseInstallation ch: new"]


def test_applied_objects_come_in_dependency_order_with_an_uninstall_policy() -> None:
    applied = ch.applied_objects(PROFILES["s3-keys"])
    assert [(a.obj["kind"], a.wait) for a in applied] == [
        ("ServiceAccount", "none"), ("Secret", "none"), ("ClickHouseKeeperInstallation", "installation"),
        ("ClickHouseInstallation", "installation"), ("Job", "job"), ("CronJob", "none")]
    assert all(a.on_uninstall in ("delete", "keep") and a.why for a in applied)
    assert [s.name for s in ch.secret_specs(PROFILES["s3-keys"])] == [
        "clickhouse-secrets", "clickhouse-backup-credentials"]
    assert [s.name for s in ch.secret_specs(PROFILES["s3-irsa"])] == ["clickhouse-secrets"]


def test_operator_values_fit_the_chart_values_schema() -> None:
    import io
    import tarfile

    from tests.clickhouse_support import operator_chart

    with tarfile.open(operator_chart()) as tar:
        handle = tar.extractfile("altinity-clickhouse-operator/values.schema.json")
        assert handle is not None
        schema = json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    values = ch.operator_values(PROFILES["sharded-mirror"])
    jsonschema.validate(values, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"operator": {"image": {"repository": 7}}}, schema)
    assert (ch.OPERATOR_CHART.repo, ch.OPERATOR_CHART.name, ch.OPERATOR_CHART.version) == (
        "https://helm.altinity.com", "altinity-clickhouse-operator", "0.25.6")


def test_without_a_bucket_backups_stay_on_the_data_volume() -> None:
    profile = _profile({})  # the sandbox: no bucket
    config = ch.backup_config(profile)
    doc = yaml.safe_load(config.text)
    assert doc["general"]["remote_storage"] == "none" and set(doc) == {"general", "clickhouse", "api"}
    assert config.credentials is None and config.service_account_annotations == {}
    container = ch.backup_cronjob(profile)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["BACKUP_LOCATION"] == "local"
    validate(ch.clickhouse_installation(profile))


def test_s3_credentials_without_an_access_key_id_is_a_clear_profile_error() -> None:
    from hfwizard.errors import ProfileError

    profile = _profile({"backup": {"provider": "s3", "bucket": "b-backups", "credentials": "env:HFW_CH_SK"}})
    with pytest.raises(ProfileError) as caught:
        ch.backup_config(profile)
    assert "clickhouse.backup.accessKeyId" in str(caught.value) and "roleArn" in str(caught.value)
    paired = _profile({"backup": {"provider": "s3", "bucket": "b-backups", "accessKeyId": "env:HFW_CH_AK",
                                  "credentials": "env:HFW_CH_SK"}})
    assert ch.backup_config(paired).credentials.references == [  # type: ignore[union-attr]
        "env:HFW_CH_AK", "env:HFW_CH_SK"]
