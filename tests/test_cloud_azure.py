"""Azure discovery against a local HTTPS stand-in for Entra ID and Azure Resource Manager."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from hfwizard.cloud.azure import AzureOptions, AzureProvider
from hfwizard.cloud.base import CloudProvider, FoundCredential
from tests.fixtures.cloud import AZ_CLIENT, AZ_SUB, AZ_TENANT, CANARY, StandIn, TlsFiles

pytestmark = pytest.mark.usefixtures("no_egress")


@pytest.fixture
def azure(
    cloud_env: Path, azure_standin: StandIn, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> AzureProvider:
    monkeypatch.setenv("AZURE_TENANT_ID", AZ_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", AZ_CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CANARY)
    azure_standin.state["secret"] = CANARY
    profile = cloud_env / ".azure"
    profile.mkdir()
    (profile / "azureProfile.json").write_text(
        "\ufeff"
        + json.dumps(
            {
                "installationId": "x",
                "subscriptions": [
                    {
                        "id": AZ_SUB,
                        "name": "Highflame Prod",
                        "state": "Enabled",
                        "tenantId": AZ_TENANT,
                        "isDefault": True,
                        "environmentName": "AzureCloud",
                        "user": {"name": "ops@example.com", "type": "user"},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return AzureProvider(
        AzureOptions(
            authority_host=azure_standin.url,
            management_endpoint=azure_standin.url,
            timeout_s=5,
            ca_bundle=tls.ca_file,
        )
    )


def kinds(found: list[FoundCredential]) -> dict[str, FoundCredential]:
    return {c.kind: c for c in found}


def test_credentials_are_found(azure: AzureProvider) -> None:
    found = kinds(azure.discover_credentials())
    assert isinstance(azure, CloudProvider)
    assert found["azure-env"].details == {"tenant_id": AZ_TENANT, "client_id": AZ_CLIENT, "auth": "secret"}
    cli = found["azure-cli"]
    assert cli.name == "Highflame Prod" and cli.details["subscription_id"] == AZ_SUB
    assert cli.details["user"] == "ops@example.com" and cli.details["default"] == "true"


def test_service_principal_validates(azure: AzureProvider, azure_standin: StandIn) -> None:
    result = azure.validate(kinds(azure.discover_credentials())["azure-env"])
    assert result.ok, result.findings
    assert result.identity and (result.identity.account, result.identity.tenant) == (AZ_SUB, AZ_TENANT)
    assert result.identity.principal == AZ_CLIENT
    assert f"POST /{AZ_TENANT}/oauth2/v2.0/token" in azure_standin.calls


def test_wrong_client_secret_gives_aadsts7000215(azure: AzureProvider, azure_standin: StandIn) -> None:
    azure_standin.state["secret"] = "the-real-one"
    result = azure.validate(kinds(azure.discover_credentials())["azure-env"])
    assert not result.ok
    assert result.findings[0].code == "azure/invalid-client-secret"
    assert (
        result.findings[0].remedy
        and f"az ad app credential reset --id {AZ_CLIENT}" in result.findings[0].remedy
    )


def test_cli_without_az_says_so(azure: AzureProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = azure.validate(kinds(azure.discover_credentials())["azure-cli"])
    assert result.findings[0].code == "azure/cli-missing"


def test_clusters_databases_caches_buckets(
    azure: AzureProvider, azure_standin: StandIn, cloud_env: Path
) -> None:
    cred = kinds(azure.discover_credentials())["azure-env"]
    (aks,) = azure.list_clusters(cred)
    assert (aks.name, aks.location, aks.version) == ("hf-aks", "eastus", "1.32.3")
    assert aks.endpoint == "https://hfaks-a1b2c3d4.hcp.eastus.azmk8s.io:443"
    workers = {p.name: p for p in aks.node_pools}["workers"]
    assert (workers.cores, workers.memory_gib, workers.count, workers.max_count) == (8, 32.0, 6, 9)
    assert aks.node_count == 8
    (pg,) = azure.list_postgres(cred)
    assert (pg.version, pg.endpoint) == ("17.2", "hf-pg.postgres.database.azure.com")
    # Standard_D4ds_v5 is not in the region's vmSizes answer: estimated from its name (D family, 4 GiB/vCPU).
    assert (pg.instance_class, pg.cores, pg.memory_gib) == ("Standard_D4ds_v5", 4, 16.0)
    (cache,) = azure.list_redis(cred)  # Redis Enterprise's provider is unregistered: skipped, not an error
    assert cache.endpoints == ("hf-cache.redis.cache.windows.net:6380",)
    assert cache.cluster_mode is True and cache.shards == 3 and cache.memory_gib == 6.0 and cache.tls
    (bucket,) = azure.list_buckets(cred)
    assert bucket.name == "hfbackups/clickhouse"
    probe = azure.bucket_probe(cred, "hfbackups/clickhouse")
    assert probe.ok, probe
    assert azure_standin.state["blobs"] == {}
    assert any(s == "https://storage.azure.com/.default" for s in azure_standin.state["scopes"])
    path = azure.kubeconfig_for(cred, aks, cloud_env / "aks-kubeconfig")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(path.read_text())
    assert doc["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0FEQVRB"
    exec_spec = doc["users"][0]["user"]["exec"]
    assert exec_spec["args"][2:5] == ["azure", "--kind", "azure-env"]  # no kubelogin needed
    assert CANARY not in path.read_text()


def test_secrets_stay_out_of_results_and_logs(
    azure: AzureProvider,
    azure_standin: StandIn,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    found = azure.discover_credentials()
    results = [azure.validate(c) for c in found]
    azure_standin.state["secret"] = "the-real-one"
    results += [azure.validate(c) for c in found]
    text = repr(found) + repr(results)
    out, err = capfd.readouterr()
    for where, blob in (("results", text), ("logs", caplog.text), ("stdout", out), ("stderr", err)):
        assert CANARY not in blob, where
