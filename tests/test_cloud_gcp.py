"""GCP discovery against a local HTTPS stand-in for Google's token and list endpoints."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from hfwizard.cloud.base import CloudError, CloudProvider, FoundCredential
from hfwizard.cloud.gcp import GcpProvider
from tests.fixtures.cloud import CANARY, GCP_PROJECT, SA_EMAIL, StandIn, TlsFiles
from tests.fixtures.cloud import gcp_options as options
from tests.fixtures.cloud import write_sa_key as write_key

pytestmark = pytest.mark.usefixtures("no_egress")


def write_gcloud(home: Path, refresh_token: str) -> Path:
    root = home / ".config" / "gcloud"
    (root / "configurations").mkdir(parents=True)
    (root / "active_config").write_text("work")
    (root / "configurations" / "config_work").write_text(
        f"[core]\nproject = {GCP_PROJECT}\naccount = ops@example.com\n\n[compute]\nregion = us-central1\n"
    )
    adc = root / "application_default_credentials.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "764086051850.apps.googleusercontent.com",
                "client_secret": CANARY,
                "refresh_token": refresh_token,
            }
        )
    )
    return adc


@pytest.fixture
def gcp(cloud_env: Path, gcp_standin: StandIn, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> GcpProvider:
    key = write_key(cloud_env / "sa.json", gcp_standin)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    write_gcloud(cloud_env, "1//refresh-ok")
    return GcpProvider(options(gcp_standin, tls))


def kinds(found: list[FoundCredential]) -> dict[str, FoundCredential]:
    return {c.kind: c for c in found}


def test_credentials_are_found(gcp: GcpProvider) -> None:
    found = kinds(gcp.discover_credentials())
    assert isinstance(gcp, CloudProvider)
    assert found["gcp-service-account"].name == SA_EMAIL
    assert found["gcp-service-account"].source == "environment (GOOGLE_APPLICATION_CREDENTIALS)"
    assert found["gcp-adc"].details["account"] == "ops@example.com"
    assert found["gcp-gcloud-config"].name == "work"
    assert found["gcp-gcloud-config"].details["project"] == GCP_PROJECT
    assert found["gcp-gcloud-config"].region == "us-central1"


def test_service_account_and_adc_validate(gcp: GcpProvider, gcp_standin: StandIn) -> None:
    found = kinds(gcp.discover_credentials())
    for kind in ("gcp-service-account", "gcp-adc", "gcp-gcloud-config"):
        result = gcp.validate(found[kind])
        assert result.ok, (kind, result.findings)
        assert result.identity and result.identity.account == GCP_PROJECT
    assert gcp.validate(found["gcp-service-account"]).identity.principal == SA_EMAIL  # type: ignore[union-attr]
    assert "POST /token" in gcp_standin.calls


def test_rejected_key_and_revoked_adc_give_findings(
    gcp: GcpProvider, gcp_standin: StandIn, cloud_env: Path
) -> None:
    found = kinds(gcp.discover_credentials())
    gcp_standin.state["reject"] = True
    sa = gcp.validate(found["gcp-service-account"])
    assert sa.findings[0].code == "gcp/key-rejected"
    assert sa.findings[0].remedy and SA_EMAIL in sa.findings[0].remedy
    gcp_standin.state["reject"] = False
    (cloud_env / ".config" / "gcloud" / "application_default_credentials.json").unlink()
    write_gcloud_adc = cloud_env / "revoked.json"
    write_gcloud_adc.write_text(
        json.dumps(
            {"type": "authorized_user", "client_id": "x", "client_secret": CANARY, "refresh_token": "revoked"}
        )
    )
    revoked = gcp.credential_from_file(write_gcloud_adc)
    assert revoked is not None
    result = gcp.validate(revoked)
    assert result.findings[0].code == "gcp/reauth-needed"
    assert result.findings[0].remedy == "run: gcloud auth application-default login"


def test_project_without_access_is_a_finding(gcp: GcpProvider) -> None:
    cred = kinds(gcp.discover_credentials())["gcp-service-account"]
    other = FoundCredential(
        cred.cloud, cred.kind, cred.name, cred.source, None, {**cred.details, "project": "nope"}
    )
    result = gcp.validate(other)
    assert result.findings[0].code == "gcp/permission-denied"


def test_clusters_databases_caches_buckets(gcp: GcpProvider, gcp_standin: StandIn, cloud_env: Path) -> None:
    cred = kinds(gcp.discover_credentials())["gcp-service-account"]
    (cluster,) = gcp.list_clusters(cred)
    assert (cluster.name, cluster.location, cluster.version) == (
        "hf-gke",
        "us-central1",
        "1.32.2-gke.1182003",
    )
    assert cluster.endpoint == "https://34.118.20.7" and cluster.ca_data
    pool = cluster.node_pools[0]
    assert (pool.instance_type, pool.cores, pool.memory_gib, pool.count, pool.max_count) == (
        "n2-standard-8",
        8,
        32.0,
        6,
        12,
    )
    (pg,) = gcp.list_postgres(cred)
    assert (pg.name, pg.version, pg.endpoint, pg.cores, pg.memory_gib) == (
        "hf-pg",
        "17.2",
        "10.20.0.3",
        4,
        8.0,
    )
    caches = {c.name: c for c in gcp.list_redis(cred)}
    assert caches["hf-cache"].version == "7.2" and caches["hf-cache"].cluster_mode is False
    assert caches["hf-cache"].endpoints == ("10.30.0.4:6379",) and caches["hf-cache"].memory_gib == 5.0
    rc = caches["hf-redis-cluster"]
    assert rc.cluster_mode is True and rc.shards == 3 and rc.memory_gib == 13.0 and rc.tls is True
    assert [b.name for b in gcp.list_buckets(cred)] == ["hf-clickhouse-backups"]
    assert gcp.bucket_probe(cred, "hf-clickhouse-backups").ok
    assert gcp_standin.state["objects"] == {}
    denied = gcp.bucket_probe(cred, "read-only-bucket")
    assert denied.code == "gcp/permission-denied" and "storage.objects.create" in denied.message


def test_kubeconfig_exec_plugin_mints_a_token(
    gcp: GcpProvider, cloud_env: Path, gcp_standin: StandIn
) -> None:
    import os
    import subprocess

    from ruamel.yaml import YAML

    cred = kinds(gcp.discover_credentials())["gcp-service-account"]
    (cluster,) = gcp.list_clusters(cred)
    path = gcp.kubeconfig_for(cred, cluster, cloud_env / "kc")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = YAML(typ="safe").load(path.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://34.118.20.7"
    spec = doc["users"][0]["user"]["exec"]
    out = subprocess.run(
        [spec["command"], *spec["args"]], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)["status"]
    assert status["token"].startswith("ya29.standin-") and status["expirationTimestamp"].endswith("Z")
    static = gcp.kubeconfig_for(cred, cluster, cloud_env / "kc-static", static_token=True)
    assert "ya29.standin-" in static.read_text()


def test_no_project_is_a_finding(cloud_env: Path, gcp_standin: StandIn, tls: TlsFiles) -> None:
    key = write_key(cloud_env / "sa.json", gcp_standin)
    info = json.loads(key.read_text())
    del info["project_id"]
    key.write_text(json.dumps(info))
    provider = GcpProvider(options(gcp_standin, tls))
    cred = provider.credential_from_file(key)
    assert cred is not None
    assert provider.validate(cred).findings[0].code == "gcp/no-project"
    with pytest.raises(CloudError):
        provider.list_clusters(cred)


def test_secrets_stay_out_of_results_and_logs(
    gcp: GcpProvider,
    gcp_standin: StandIn,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    found = gcp.discover_credentials()
    results = [gcp.validate(c) for c in found]
    gcp_standin.state["reject"] = True
    results += [gcp.validate(c) for c in found]
    text = repr(found) + repr(results)
    out, err = capfd.readouterr()
    for where, blob in (("results", text), ("logs", caplog.text), ("stdout", out), ("stderr", err)):
        assert CANARY not in blob, where
        assert "PRIVATE KEY" not in blob, where


def test_bucket_probe_writes_deletes_and_names_what_failed(gcp: GcpProvider, gcp_standin: StandIn) -> None:
    cred = kinds(gcp.discover_credentials())["gcp-service-account"]
    ok = gcp.bucket_probe(cred, "hf-clickhouse-backups")
    assert ok.ok and ok.message == "gs://hf-clickhouse-backups accepts writes and deletes", ok
    assert gcp_standin.state["objects"] == {}  # the probe object was deleted again
    uploads = [c for c in gcp_standin.calls if c.startswith("POST /upload/storage/v1/b/hf-clickhouse-backups/o")]
    deletes = [c for c in gcp_standin.calls if c.startswith("DELETE /storage/v1/b/hf-clickhouse-backups/o/")]
    assert len(uploads) == len(deletes) == 1
    missing = gcp.bucket_probe(cred, "hf-no-such-bucket")
    assert (missing.ok, missing.code) == (False, "gcp/bucket-not-found")
    assert missing.message == "bucket gs://hf-no-such-bucket does not exist"
    assert missing.remedy and "gcloud storage buckets create gs://hf-no-such-bucket" in missing.remedy
    denied = gcp.bucket_probe(cred, "read-only-bucket")
    assert (denied.ok, denied.code) == (False, "gcp/permission-denied")
    assert denied.message == "permission denied: storage.objects.create on gs://read-only-bucket"
    assert denied.remedy and f"serviceAccount:{SA_EMAIL}" in denied.remedy
    assert "roles/storage.objectUser" in denied.remedy
