"""Profile -> Helm values and Secrets: the single mapping module, checked field by field."""

from __future__ import annotations

import json
from pathlib import Path

from hfwizard import values
from hfwizard.profile_io import load_profile, parse_profile

ROOT = Path(__file__).resolve().parent.parent
HEAD = "apiVersion: hfwizard/v1\nkind: InstallProfile\n"


def test_k8s_references_point_at_existing_secrets_and_create_none() -> None:
    p = parse_profile(HEAD + """\
postgres: {host: db.example.com, password: "k8s:db-creds/pw"}
platform: {modelApiKeys: {openai: "env:OPENAI", anthropic: "k8s:anthropic/token"}}
images: {pullSecret: "k8s:ghcr-pull/token"}
""").profile
    hf = values.highflame_values(p)
    assert hf["postgres"]["password"] == {"existingSecret": "db-creds", "key": "pw"}
    assert hf["modelApiKeys"] == [
        {"provider": "anthropic", "existingSecret": "anthropic", "key": "token"},
        {"provider": "openai", "existingSecret": "highflame-model-api-keys", "key": "openai"},
    ]
    assert hf["global"]["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    specs = {s.name: s for s in values.secrets(p)}
    assert "highflame-postgres" not in specs and "highflame-registry" not in specs
    assert specs["highflame-model-api-keys"].entries == {"openai": "env:OPENAI"}


def test_values_never_carry_a_reference_or_a_value() -> None:
    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        p = load_profile(path).profile
        text = json.dumps([r.values for r in values.releases(p)])
        for prefix in ("env:", "file:", "keyring:", "k8s:"):
            assert prefix not in text, f"{path.name}: a reference leaked into values"


def test_sizing_and_modules_reach_the_platform_values() -> None:
    p = parse_profile(HEAD + "sizing: {preset: large}\nmodules: {redTeaming: {enabled: false}}\n").profile
    mods = values.highflame_values(p)["modules"]
    assert mods["guardrails"]["hpa"] == {"enabled": True, "minReplicas": 4, "maxReplicas": 16,
                                         "targetCPUUtilizationPercentage": 70}
    assert mods["guardrails"]["pdb"] == {"enabled": True, "minAvailable": 3}
    assert mods["redTeaming"]["enabled"] is False
    assert [m.value for m in values.enabled_modules(p)].count("redTeaming") == 0


def test_clickhouse_gets_images_storage_and_backup() -> None:
    p = load_profile(ROOT / "profiles" / "aws.yaml").profile
    ch = values.clickhouse_values(p)
    assert ch["global"]["imageRegistry"] == "ghcr.io"
    assert ch["persistence"] == {"size": "500Gi", "storageClass": "gp3"}
    assert ch["backup"]["bucket"] == "acme-highflame-backups" and ch["backup"]["enabled"] is True
    assert [r.release for r in values.releases(p)] == ["highflame-clickhouse", "highflame"]


def test_ingress_annotations_follow_the_tls_source() -> None:
    aws = values.highflame_values(load_profile(ROOT / "profiles" / "aws.yaml").profile)["ingress"]
    assert aws["annotations"]["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert aws["tls"]["secretName"] is None  # the ALB terminates TLS with the ACM certificate
    onprem = values.highflame_values(load_profile(ROOT / "profiles" / "existing.yaml").profile)["ingress"]
    assert onprem["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert onprem["tls"]["secretName"] == "highflame-tls"
