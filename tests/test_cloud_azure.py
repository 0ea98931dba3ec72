"""Azure discovery against a local HTTPS stand-in for Entra ID and Azure Resource Manager."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from hfwizard.cloud.azure import AzureOptions, AzureProvider
from hfwizard.cloud.base import CloudError, CloudProvider, FoundCredential
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


def test_bucket_probe_writes_deletes_and_names_what_failed(azure: AzureProvider, azure_standin: StandIn) -> None:
    cred = kinds(azure.discover_credentials())["azure-env"]
    ok = azure.bucket_probe(cred, "hfbackups/clickhouse")
    assert ok.ok and ok.code == "azure/bucket-writable", ok
    assert azure_standin.state["blobs"] == {}
    puts = [c for c in azure_standin.calls if c.startswith("PUT /blob/hfbackups/clickhouse/.hfwizard-probe/")]
    deletes = [c for c in azure_standin.calls if c.startswith("DELETE /blob/hfbackups/clickhouse/")]
    assert len(puts) == len(deletes) == 1
    missing = azure.bucket_probe(cred, "hfbackups/no-such-container")
    assert (missing.ok, missing.code) == (False, "azure/container-not-found")
    assert missing.message == "container no-such-container does not exist in storage account hfbackups"
    assert missing.remedy and "az storage container create --account-name hfbackups" in missing.remedy
    denied = azure.bucket_probe(cred, "hfbackups/readonly")
    assert (denied.ok, denied.code) == (False, "azure/permission-denied")
    assert "AuthorizationPermissionMismatch" in denied.message and "hfbackups/readonly" in denied.message
    assert denied.remedy and "Storage Blob Data Contributor" in denied.remedy
    assert azure.bucket_probe(cred, "no-slash").code == "azure/bad-bucket-name"


def test_client_secret_held_in_memory(
    azure: AzureProvider, azure_standin: StandIn, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import copy
    import pickle

    monkeypatch.delenv("AZURE_CLIENT_SECRET")  # the value reaches azure-identity from memory only
    cred = azure.client_secret_credential(AZ_TENANT, AZ_CLIENT, CANARY, subscription_id=AZ_SUB,
                                          source="credentials.azure.clientSecret (file:/x)")
    result = azure.validate(cred)
    assert result.ok and result.identity and result.identity.principal == AZ_CLIENT, result.findings
    assert azure.bucket_probe(cred, "hfbackups/clickhouse").ok
    azure_standin.state["secret"] = "the-real-one"
    rejected = azure.validate(cred)
    assert rejected.findings[0].code == "azure/invalid-client-secret"
    assert rejected.findings[0].remedy and "credentials.azure.clientSecret (file:/x)" in rejected.findings[0].remedy
    assert copy.deepcopy(cred).sealed is cred.sealed
    with pytest.raises(TypeError):
        pickle.dumps(cred)
    out, err = capfd.readouterr()
    for text in (repr(cred), str(cred), repr(result), repr(rejected), out, err):
        assert CANARY not in text


def test_kubeconfig_exec_plugin_mints_a_token(azure: AzureProvider, azure_standin: StandIn, cloud_env: Path) -> None:
    import os
    import subprocess

    from ruamel.yaml import YAML

    from hfwizard.cloud.azure import AKS_SERVER_SCOPE
    from hfwizard.cloud.base import jwt_claims

    cred = kinds(azure.discover_credentials())["azure-env"]
    (aks,) = azure.list_clusters(cred)
    path = azure.kubeconfig_for(cred, aks, cloud_env / "aks-kubeconfig")
    spec = YAML(typ="safe").load(path.read_text())["users"][0]["user"]["exec"]
    assert "--authority-host" in spec["args"] and CANARY not in path.read_text()

    def run() -> subprocess.CompletedProcess[str]:
        # As kubectl would: the command and args from the kubeconfig, in the operator's environment.
        return subprocess.run([spec["command"], *spec["args"]], capture_output=True, text=True, timeout=60,
                              env=os.environ.copy())

    out = run()
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)["status"]
    assert status["expirationTimestamp"].endswith("Z")
    claims = jwt_claims(status["token"])
    assert claims["aud"] == AKS_SERVER_SCOPE.removesuffix("/.default") and claims["tid"] == AZ_TENANT
    azure_standin.state["secret"] = "the-real-one"
    out = run()
    assert out.returncode == 1 and out.stdout == ""
    assert "AADSTS7000215" in out.stderr and CANARY not in out.stderr


def test_kubeconfig_merges_into_an_existing_file(azure: AzureProvider, cloud_env: Path) -> None:
    from ruamel.yaml import YAML

    cred = kinds(azure.discover_credentials())["azure-env"]
    (aks,) = azure.list_clusters(cred)
    default = cloud_env / ".kube" / "config"  # $KUBECONFIG in cloud_env: the operator's own file
    default.parent.mkdir()
    existing = (
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\n"
        "clusters:\n- name: kind-dev\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
        "users:\n- name: kind-dev\n  user: {token: dev-token}\n"
        "contexts:\n- name: kind-dev\n  context: {cluster: kind-dev, user: kind-dev, namespace: apps}\n"
    )
    default.write_text(existing)
    default.chmod(0o644)
    with pytest.raises(CloudError) as refused:
        azure.kubeconfig_for(cred, aks, default)
    assert refused.value.finding.code == "kubeconfig/default-file"
    assert default.read_text() == existing  # untouched
    for _ in range(2):  # merging again replaces the entry, never duplicates it
        azure.kubeconfig_for(cred, aks, default, merge=True)
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    doc = YAML(typ="safe").load(default.read_text())
    assert doc["current-context"] == "hf-aks"
    contexts = {c["name"]: c["context"] for c in doc["contexts"]}
    assert contexts == {"kind-dev": {"cluster": "kind-dev", "user": "kind-dev", "namespace": "apps"},
                        "hf-aks": {"cluster": "hf-aks", "user": "hf-aks"}}
    users = {u["name"]: u["user"] for u in doc["users"]}
    assert users["kind-dev"] == {"token": "dev-token"} and "exec" in users["hf-aks"]
    assert [c["name"] for c in doc["clusters"]] == ["kind-dev", "hf-aks"]
    assert not list(default.parent.glob(".kubeconfig-*"))  # no temporary file left behind


def test_exec_plugin_is_refused_for_an_in_memory_secret(azure: AzureProvider, cloud_env: Path) -> None:
    cred = azure.client_secret_credential(AZ_TENANT, AZ_CLIENT, CANARY, subscription_id=AZ_SUB)
    (aks,) = azure.list_clusters(cred)
    with pytest.raises(CloudError) as refused:
        azure.kubeconfig_for(cred, aks, cloud_env / "kc")
    assert refused.value.finding.code == "azure/secret-no-exec" and not (cloud_env / "kc").exists()
    static = azure.kubeconfig_for(cred, aks, cloud_env / "kc", static_token=True)
    assert CANARY not in static.read_text()


def test_first_sdk_imports_never_run_in_two_threads_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-core's circular imports deadlock when two threads import it first through different modules;
    load_sdk lets one thread import at a time, and each caller returns only once the modules are whole."""
    import sys
    import threading

    from hfwizard.cloud.base import load_sdk

    package = tmp_path / "hfw_fake_sdk"
    package.mkdir()
    (package / "__init__.py").write_text("LOG = []\n")
    for name in ("core", "identity"):
        (package / f"{name}.py").write_text(
            f"import time\nfrom hfw_fake_sdk import LOG\nLOG.append('start {name}')\ntime.sleep(0.1)\n"
            f"LOG.append('end {name}')\nCOMPLETE = True\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    complete: list[bool] = []

    def use(*modules: str) -> None:
        load_sdk(*modules)
        complete.append(all(getattr(sys.modules[m], "COMPLETE", False) for m in modules))

    core, identity = "hfw_fake_sdk.core", "hfw_fake_sdk.identity"
    threads = [threading.Thread(target=use, args=(core, identity)),
               threading.Thread(target=use, args=(identity, core))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        log = list(sys.modules["hfw_fake_sdk"].LOG)  # type: ignore[attr-defined]
    finally:
        for name in [m for m in sys.modules if m.startswith("hfw_fake_sdk")]:
            del sys.modules[name]
    assert complete == [True, True]
    # Each module imported once, and never two imports under way at the same time.
    assert sorted(log) == ["end core", "end identity", "start core", "start identity"]
    assert [e.split()[0] for e in log] == ["start", "end", "start", "end"]
    assert log[0].split()[1] == log[1].split()[1] and log[2].split()[1] == log[3].split()[1]
