"""The preflight's blob-store and cloud-identity checks through run_preflight, for S3, GCS and Azure Blob,
against moto and the loopback Google/Azure stand-ins, with the secrets behind every kind of reference."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.cloud.aws import AwsOptions
from hfwizard.cloud.azure import AzureOptions
from hfwizard.events import CheckFinished
from hfwizard.preflight import PreflightSettings, run_preflight
from hfwizard.profile_io import parse_profile
from tests.fixtures.cloud import (
    AZ_CLIENT,
    AZ_SUB,
    AZ_TENANT,
    CANARY,
    GCP_PROJECT,
    SA_EMAIL,
    StandIn,
    TlsFiles,
    gcp_options,
    write_sa_key,
)

pytestmark = pytest.mark.usefixtures("no_egress")

# Only the two checks under test run; the rest have tests of their own.
ONLY_CLOUD = ("kubernetes", "helm", "postgres", "redis", "clerk", "outbound")
AWS_KEY_ID = "AKIAPREFLIGHTCANARY1"


async def preflight(text: str, settings: PreflightSettings) -> dict[str, CheckResult]:
    profile = parse_profile(text).profile
    return {e.result.id: e.result async for e in run_preflight(profile, settings) if isinstance(e, CheckFinished)}


def header(kubeconfig: Path) -> str:
    return f"apiVersion: hfwizard/v1\nkind: InstallProfile\ntarget: {{cloud: existing, kubeconfig: {kubeconfig}}}\n"


@pytest.fixture
def memory_keyring() -> Iterator[dict[tuple[str, str], str]]:
    """A keyring of the test's own (this machine has no keyring service), restored afterwards."""
    import keyring
    from keyring.backend import KeyringBackend

    store: dict[tuple[str, str], str] = {}

    class Memory(KeyringBackend):
        # Below the fail backend's 0, so keyring never picks it on its own for other tests.
        priority = -1

        def get_password(self, service: str, username: str) -> str | None:
            return store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            store.pop((service, username), None)

    before = keyring.get_keyring()
    keyring.set_keyring(Memory())
    yield store
    keyring.set_keyring(before)


def assert_no_leak(secret: str, results: dict[str, CheckResult], caplog: pytest.LogCaptureFixture,
                   capfd: pytest.CaptureFixture[str]) -> None:
    out, err = capfd.readouterr()
    for where, text in (("results", repr(results)), ("logs", caplog.text), ("stdout", out), ("stderr", err)):
        assert secret not in text, where


# ---- GCS and Google identity ---------------------------------------------------------------------


@pytest.fixture
def gcp_profile(cloud_env: Path, gcp_standin: StandIn) -> Any:
    key = write_sa_key(cloud_env / "sa.json", gcp_standin)

    def text(bucket: str) -> str:
        return header(cloud_env / "none") + (
            f"credentials:\n  gcp: {{project: {GCP_PROJECT}, serviceAccountKey: 'file:{key}'}}\n"
            f"clickhouse:\n  backup: {{provider: gcs, bucket: {bucket}}}\n")

    return text


async def test_gcs_bucket_and_google_identity_pass(gcp_profile: Any, gcp_standin: StandIn, tls: TlsFiles) -> None:
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, gcp=gcp_options(gcp_standin, tls))
    got = await preflight(gcp_profile("hf-clickhouse-backups"), settings)
    blob, identity = got["blob/backup-bucket"], got["cloud/identity"]
    assert blob.status is Status.PASS, blob
    assert blob.finding == "gs://hf-clickhouse-backups accepts writes and deletes"
    assert gcp_standin.state["objects"] == {}
    assert identity.status is Status.PASS, identity
    assert identity.finding == f"gcp: {SA_EMAIL} (account {GCP_PROJECT})"


@pytest.mark.parametrize(("bucket", "code"), [("hf-no-such-bucket", "gcp/bucket-not-found"),
                                              ("read-only-bucket", "gcp/permission-denied")])
async def test_gcs_bucket_missing_or_denied_fails(gcp_profile: Any, gcp_standin: StandIn, tls: TlsFiles,
                                                  bucket: str, code: str) -> None:
    settings = PreflightSettings(skip=(*ONLY_CLOUD, "cloud"), timeout=5, gcp=gcp_options(gcp_standin, tls))
    blob = (await preflight(gcp_profile(bucket), settings))["blob/backup-bucket"]
    assert blob.status is Status.FAIL and blob.details["code"] == code, blob
    assert f"gs://{bucket}" in blob.finding and blob.remedy


async def test_rejected_google_key_fails_both_checks(gcp_profile: Any, gcp_standin: StandIn, tls: TlsFiles,
                                                     caplog: pytest.LogCaptureFixture,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    gcp_standin.state["reject"] = True  # the token endpoint answers invalid_grant
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, gcp=gcp_options(gcp_standin, tls))
    got = await preflight(gcp_profile("hf-clickhouse-backups"), settings)
    identity = got["cloud/identity"]
    assert identity.status is Status.FAIL and identity.details["code"] == "gcp/key-rejected", identity
    assert identity.remedy and f"--iam-account {SA_EMAIL}" in identity.remedy
    assert got["blob/backup-bucket"].status is Status.FAIL
    assert_no_leak("PRIVATE KEY", got, caplog, capfd)


async def test_google_key_behind_a_non_file_reference_is_refused(cloud_env: Path, gcp_standin: StandIn,
                                                                 tls: TlsFiles) -> None:
    text = header(cloud_env / "none") + (
        f"credentials:\n  gcp: {{project: {GCP_PROJECT}, serviceAccountKey: 'env:HF_GCP_KEY'}}\n"
        "clickhouse:\n  backup: {provider: gcs, bucket: hf-clickhouse-backups}\n")
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, gcp=gcp_options(gcp_standin, tls))
    identity = (await preflight(text, settings))["cloud/identity"]
    assert identity.status is Status.FAIL and "only file: references" in identity.finding, identity
    assert "POST /token" not in gcp_standin.calls  # no other identity was checked in its place


# ---- Azure Blob and Entra ID -----------------------------------------------------------------------


@pytest.fixture
def azure_profile(cloud_env: Path, azure_standin: StandIn, monkeypatch: pytest.MonkeyPatch,
                  memory_keyring: dict[tuple[str, str], str]) -> Any:
    """Profile text for a service principal whose secret lives behind `ref` (env:, file: or keyring:);
    the sovereign-cloud fields point Entra ID and ARM at the stand-in."""
    azure_standin.state["secret"] = CANARY
    monkeypatch.setenv("HF_AZ_SECRET", CANARY)
    secret_file = cloud_env / "az-secret"
    secret_file.write_text(CANARY + "\n")
    memory_keyring[("hfwizard", "azure-sp")] = CANARY
    refs = {"env": "env:HF_AZ_SECRET", "file": f"file:{secret_file}", "keyring": "keyring:hfwizard/azure-sp"}

    def text(container: str, ref: str = "env") -> str:
        return header(cloud_env / "none") + (
            f"credentials:\n  azure:\n    tenantId: {AZ_TENANT}\n    subscriptionId: {AZ_SUB}\n"
            f"    clientId: {AZ_CLIENT}\n    clientSecret: '{refs[ref]}'\n"
            f"    authorityHost: {azure_standin.url}\n    managementEndpoint: {azure_standin.url}\n"
            f"clickhouse:\n  backup: {{provider: azure, account: hfbackups, bucket: {container}}}\n")

    return text


@pytest.mark.parametrize("ref", ["env", "file", "keyring"])
async def test_azure_blob_and_identity_pass_with_any_reference_kind(
        azure_profile: Any, azure_standin: StandIn, tls: TlsFiles, ref: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    text = azure_profile("clickhouse", ref)
    if ref != "env":
        monkeypatch.delenv("HF_AZ_SECRET")
    # The preflight's CA bundle stands in for the Azure options' missing one.
    got = await preflight(text, PreflightSettings(skip=ONLY_CLOUD, timeout=5, ca_file=tls.ca_file))
    blob, identity = got["blob/backup-bucket"], got["cloud/identity"]
    assert blob.status is Status.PASS, blob
    assert blob.finding == "hfbackups/clickhouse accepts blob writes and deletes"
    assert azure_standin.state["blobs"] == {}
    assert identity.status is Status.PASS, identity
    assert identity.finding == f"azure: {AZ_CLIENT} (account {AZ_SUB})"
    assert "AZURE_CLIENT_SECRET" not in os.environ  # handed over in memory, not through the environment
    assert_no_leak(CANARY, got, caplog, capfd)


@pytest.mark.parametrize(("container", "code"), [("no-such-container", "azure/container-not-found"),
                                                 ("readonly", "azure/permission-denied")])
async def test_azure_container_missing_or_denied_fails(azure_profile: Any, tls: TlsFiles, container: str,
                                                       code: str) -> None:
    settings = PreflightSettings(skip=(*ONLY_CLOUD, "cloud"), timeout=5, azure=AzureOptions(ca_bundle=tls.ca_file))
    blob = (await preflight(azure_profile(container), settings))["blob/backup-bucket"]
    assert blob.status is Status.FAIL and blob.details["code"] == code, blob
    assert blob.details["bucket"] == f"hfbackups/{container}" and blob.remedy


async def test_rejected_client_secret_is_aadsts7000215(azure_profile: Any, azure_standin: StandIn, tls: TlsFiles,
                                                       caplog: pytest.LogCaptureFixture,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    azure_standin.state["secret"] = "the-real-one"
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, azure=AzureOptions(ca_bundle=tls.ca_file))
    got = await preflight(azure_profile("clickhouse", "file"), settings)
    identity = got["cloud/identity"]
    assert identity.status is Status.FAIL and identity.details["code"] == "azure/invalid-client-secret"
    assert "AADSTS7000215" in identity.finding
    assert identity.remedy and "credentials.azure.clientSecret (file:" in identity.remedy
    assert got["blob/backup-bucket"].status is Status.FAIL
    assert_no_leak(CANARY, got, caplog, capfd)


async def test_unresolvable_client_secret_names_the_reference(azure_profile: Any, tls: TlsFiles,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_AZ_SECRET")
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, azure=AzureOptions(ca_bundle=tls.ca_file))
    got = await preflight(azure_profile("clickhouse", "env"), settings)
    for check in ("cloud/identity", "blob/backup-bucket"):
        assert got[check].status is Status.FAIL and "HF_AZ_SECRET" in got[check].finding, got[check]


# ---- S3 and AWS, keys in memory -------------------------------------------------------------------


@pytest.fixture
def aws_profile(cloud_env: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch,
                memory_keyring: dict[tuple[str, str], str]) -> Any:
    import boto3

    (cloud_env / "aws-key-id").write_text(AWS_KEY_ID)
    memory_keyring[("hfwizard", "aws-secret")] = CANARY
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y").create_bucket(Bucket="hf-preflight-s3")

    def text(bucket: str) -> str:
        return header(cloud_env / "none") + (
            f"credentials:\n  aws:\n    accessKeyId: 'file:{cloud_env / 'aws-key-id'}'\n"
            f"    secretAccessKey: 'keyring:hfwizard/aws-secret'\n"
            f"clickhouse:\n  backup: {{provider: s3, bucket: {bucket}, region: us-east-1}}\n")

    return text


def _aws_files() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("hfwizard-aws-")}


async def test_s3_bucket_and_identity_with_keys_in_memory(
        aws_profile: Any, moto_url: str, cloud_env: Path, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    before = _aws_files()
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, aws=AwsOptions(endpoint_url=moto_url))
    got = await preflight(aws_profile("hf-preflight-s3"), settings)
    assert got["blob/backup-bucket"].status is Status.PASS, got["blob/backup-bucket"]
    assert got["cloud/identity"].status is Status.PASS and "123456789012" in got["cloud/identity"].finding
    missing = (await preflight(aws_profile("hf-preflight-absent"), settings))["blob/backup-bucket"]
    assert missing.status is Status.FAIL and "hf-preflight-absent" in missing.finding
    # Nothing was written for the keys: no credentials file, no variables, nothing under HOME.
    assert _aws_files() == before and not (cloud_env / ".aws").exists()
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert_no_leak(CANARY, got | {"missing": missing}, caplog, capfd)
    assert AWS_KEY_ID not in repr(got)


async def test_existing_cluster_without_cloud_credentials_does_not_borrow_the_ambient_login(
        cloud_env: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y").create_bucket(Bucket="hf-ambient")
    # Keys in the environment that would open the bucket: they are the operator's, not ClickHouse's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENTOPERATOR1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    text = header(cloud_env / "none") + "clickhouse:\n  backup: {provider: s3, bucket: hf-ambient, region: us-east-1}\n"
    settings = PreflightSettings(skip=ONLY_CLOUD, timeout=5, aws=AwsOptions(endpoint_url=moto_url))
    got = await preflight(text, settings)
    blob = got["blob/backup-bucket"]
    assert blob.status is Status.FAIL, blob
    assert "no credentials.aws" in blob.finding and "--skip-check blob/backup-bucket" in (blob.remedy or "")
    assert got["cloud/identity"].status is Status.SKIPPED


NOT_SIZE = ("kubernetes", "helm", "redis", "clerk", "outbound", "blob", "cloud", "postgres/reachable",
            "postgres/tls", "postgres/auth", "postgres/version", "postgres/database", "postgres/create-database")


@pytest.mark.parametrize(("identifier", "db_class", "status", "says"), [
    ("hf-pg-size-ok", "db.m6g.xlarge", Status.PASS, "RDS instance hf-pg-size-ok (db.m6g.xlarge): 4 vCPU, 16 GiB"),
    ("hf-pg-size-small", "db.t3.medium", Status.FAIL, "has 2 vCPU, 4 GiB; Highflame needs at least 4 vCPU and 8"),
])
async def test_managed_postgres_size_comes_from_the_cloud(cloud_env: Path, moto_url: str,
                                                          monkeypatch: pytest.MonkeyPatch, identifier: str,
                                                          db_class: str, status: Status, says: str) -> None:
    import boto3

    rds = boto3.client("rds", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="y")
    made = rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", EngineVersion="17.2",
                                  DBInstanceClass=db_class, MasterUsername="hf", MasterUserPassword=CANARY,
                                  AllocatedStorage=20)["DBInstance"]
    host = made["Endpoint"]["Address"]
    monkeypatch.setenv("HF_SIZE_KEY", "AKIASIZECHECK0000001")
    monkeypatch.setenv("HF_SIZE_SECRET", "size-secret")
    text = header(cloud_env / "none").replace("cloud: existing", "cloud: existing, region: us-east-1") + (
        "credentials:\n  aws: {accessKeyId: 'env:HF_SIZE_KEY', secretAccessKey: 'env:HF_SIZE_SECRET'}\n"
        f"postgres: {{host: {host}, password: 'env:HF_SIZE_SECRET'}}\n")
    settings = PreflightSettings(skip=NOT_SIZE, timeout=5, aws=AwsOptions(endpoint_url=moto_url))
    size = (await preflight(text, settings))["postgres/size"]
    assert size.status is status, size
    assert says in size.finding


async def test_postgres_size_of_an_endpoint_the_cloud_does_not_list_warns(
        cloud_env: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_SIZE_KEY", "AKIASIZECHECK0000001")
    monkeypatch.setenv("HF_SIZE_SECRET", "size-secret")
    text = header(cloud_env / "none").replace("cloud: existing", "cloud: existing, region: us-east-1") + (
        "credentials:\n  aws: {accessKeyId: 'env:HF_SIZE_KEY', secretAccessKey: 'env:HF_SIZE_SECRET'}\n"
        "postgres: {host: db.self-managed.internal, password: 'env:HF_SIZE_SECRET'}\n")
    settings = PreflightSettings(skip=NOT_SIZE, timeout=5, aws=AwsOptions(endpoint_url=moto_url))
    size = (await preflight(text, settings))["postgres/size"]
    assert size.status is Status.WARN and "no RDS instance in us-east-1 has the endpoint db.self-managed.internal" \
        in size.finding, size
    # No cloud credentials at all: not checked, and said so.
    bare = header(cloud_env / "none") + "postgres: {host: db.internal, password: 'env:HF_SIZE_SECRET'}\n"
    size = (await preflight(bare, settings))["postgres/size"]
    assert size.status is Status.SKIPPED and "4 vCPU and 8 GiB" in size.finding


def test_match_postgres_by_endpoint_and_aurora_cluster() -> None:
    from hfwizard.cloud.base import Cloud, DatabaseInfo
    from hfwizard.cloud.databases import match_postgres

    def db(name: str, endpoint: str, cores: int, gib: float, cluster: str = "") -> DatabaseInfo:
        return DatabaseInfo(Cloud.AWS, name, "postgres", "17.2", endpoint, 5432, "eu-west-1", "db.x", cores, gib,
                            details={"db_cluster": cluster} if cluster else {})

    dbs = [db("a", "a.abc.eu-west-1.rds.amazonaws.com", 8, 32.0, "hf"),
           db("b", "b.abc.eu-west-1.rds.amazonaws.com", 4, 16.0, "hf"),
           db("sql", "10.30.0.5", 4, 15.0)]
    assert match_postgres(dbs, "A.abc.eu-west-1.rds.amazonaws.com.").name == "a"  # type: ignore[union-attr]
    assert match_postgres(dbs, "10.30.0.5").name == "sql"  # type: ignore[union-attr]
    # The cluster endpoint: the smallest member, where a failover may land.
    assert match_postgres(dbs, "hf.cluster-abc.eu-west-1.rds.amazonaws.com").name == "b"  # type: ignore[union-attr]
    assert match_postgres(dbs, "elsewhere.example.com") is None


async def test_cloud_sql_size_comes_from_its_tier(gcp_profile: Any, gcp_standin: StandIn, tls: TlsFiles) -> None:
    text = gcp_profile("hf-clickhouse-backups") + "postgres: {host: 10.20.0.3, password: 'env:HOME'}\n"
    settings = PreflightSettings(skip=NOT_SIZE, timeout=5, gcp=gcp_options(gcp_standin, tls))
    size = (await preflight(text, settings))["postgres/size"]
    assert size.status is Status.PASS, size
    assert size.finding.startswith("Cloud SQL instance hf-pg (") and size.finding.endswith("4 vCPU, 8 GiB")


async def test_azure_database_size_comes_from_its_sku(azure_profile: Any, tls: TlsFiles) -> None:
    text = azure_profile("clickhouse") + "postgres: {host: hf-pg.postgres.database.azure.com, password: 'env:HOME'}\n"
    size = (await preflight(text, PreflightSettings(skip=NOT_SIZE, timeout=5, ca_file=tls.ca_file)))["postgres/size"]
    assert size.status is Status.PASS, size
    assert size.finding == "Azure Database server hf-pg (Standard_D4ds_v5): 4 vCPU, 16 GiB"
