"""Secret specs: generated platform secrets are made once and kept; references become Secret data."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hfwizard.platform.catalog import load_catalog
from hfwizard.platform.secretsets import default_goff, generated_secrets, prerequisite_secrets
from hfwizard.platform.secretspec import Generate, SecretEntry, SecretSpec, describe, generate, materialize, part
from hfwizard.platform.values import all_secrets, service_releases
from tests.platform_support import cloud_profile


def _spec(name: str) -> SecretSpec:
    return next(s for s in generated_secrets(load_catalog()) if s.name == name)


def test_generated_once_and_kept_on_the_next_run() -> None:
    spec = _spec("highflame-platform-secrets")
    first = generate(spec)
    assert set(first) == set(spec.entries)
    assert len(first["internal-service-secret"]) == 64 and int(first["internal-service-secret"], 16) >= 0
    assert generate(spec) != first  # fresh values each time nothing is kept ...
    assert generate(spec, first) == first  # ... and the cluster's copy is reused by resume and upgrade
    partial = {k: v for k, v in first.items() if k != "jwt-secret-key"}
    again = generate(spec, partial)
    assert {k: v for k, v in again.items() if k != "jwt-secret-key"} == partial
    assert again["jwt-secret-key"] and again["jwt-secret-key"] != first["jwt-secret-key"]


def test_rsa_key_pairs_match_and_a_kept_private_key_keeps_its_public_half() -> None:
    spec = _spec("highflame-auth-keys")
    data = generate(spec)
    private = serialization.load_pem_private_key(data["jwt-private.pem"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 3072
    public = serialization.load_pem_public_key(data["jwt-public.pem"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    kept = generate(spec, {"jwt-private.pem": data["jwt-private.pem"]})
    assert kept == data


def test_materialize_resolves_references_and_never_generates() -> None:
    spec = SecretSpec("s", "test", {
        "plain": SecretEntry(ref="env:A"),
        "url": SecretEntry(ref="env:B", url_quote=True, template="rediss://u:{}@h:6379"),
        "conf": SecretEntry(default="listen: 1031\n"),
    })
    seen: list[str] = []

    def resolve(ref: str) -> str:
        seen.append(ref)
        return {"env:A": "a-value", "env:B": "p@ss/w:rd"}[ref]

    assert materialize(spec, resolve) == {"plain": "a-value", "url": "rediss://u:p%40ss%2Fw%3Ard@h:6379",
                                          "conf": "listen: 1031\n"}
    assert seen == ["env:A", "env:B"] and spec.references == ["env:A", "env:B"]
    with pytest.raises(ValueError, match="generated"):
        materialize(_spec("highflame-oauth-keys"), resolve)
    with pytest.raises(ValueError, match="exactly one source"):
        SecretEntry(ref="env:A", generate=Generate("hex"))


def test_registry_secret_is_a_docker_config_for_the_registry() -> None:
    profile = cloud_profile("aws")
    spec = next(s for s in prerequisite_secrets(profile, load_catalog()) if s.name == "highflame-registry-secret")
    assert spec.type == "kubernetes.io/dockerconfigjson"
    data = json.loads(materialize(spec, lambda ref: "ghp_token")[".dockerconfigjson"])
    auth = data["auths"]["ghcr.io"]
    assert (auth["username"], auth["password"]) == ("acme-bot", "ghp_token")
    assert base64.b64decode(auth["auth"]).decode() == "acme-bot:ghp_token"


def test_feature_flags_default_and_override() -> None:
    catalog = load_catalog()
    goff = next(s for s in prerequisite_secrets(cloud_profile("aws"), catalog) if s.name == "highflame-goff")
    data = materialize(goff, lambda ref: pytest.fail("the default needs no reference"))
    assert data["goff.yaml"] == default_goff("goff.yaml") and "path: /goff/config/flags.yaml" in data["goff.yaml"]
    custom = cloud_profile("aws", **{"platform.featureFlags": "file:/etc/goff.yaml"})
    spec = next(s for s in prerequisite_secrets(custom, catalog) if s.name == "highflame-goff")
    assert spec.references == ["file:/etc/goff.yaml"]


def test_redis_ca_and_tls_secrets_come_from_files() -> None:
    catalog = load_catalog()
    profile = cloud_profile("azure", **{"redis.caCert": "/etc/ssl/redis-ca.pem", "redis.tls": True})
    specs = {s.name: s for s in prerequisite_secrets(profile, catalog)}
    assert specs["highflame-redis-cert"].references == ["file:/etc/ssl/redis-ca.pem"]
    assert specs["highflame-tls"].type == "kubernetes.io/tls"
    assert specs["highflame-tls"].references == ["file:~/.config/highflame/tls.crt", "file:~/.config/highflame/tls.key"]
    admin = next(r for r in service_releases(profile) if r.service == "admin").values
    assert admin["confimaps"]["configMapData"]["REDIS_CACERT"] == "/app/certs/redis-ca.pem"
    assert {"name": "redis-cert", "mountPath": "/app/certs/redis-ca.pem", "readOnly": True,
            "subPath": "redis-ca.pem"} in admin["volumeMounts"]


def test_describe_lists_every_secret_with_sources_and_no_values() -> None:
    profile = cloud_profile("aws")
    listing = [describe(s) for s in all_secrets(profile)]
    names = [d["name"] for d in listing]
    assert names[:4] == ["highflame-platform-secrets", "highflame-auth-keys", "highflame-oauth-keys",
                         "highflame-signing-keys"]
    assert "highflame-admin-env" in names and "highflame-flag-env" not in names
    admin = next(d for d in listing if d["name"] == "highflame-admin-env")
    assert admin["keys"]["DB_PASSWORD"] == "from env:HF_CANARY_PG"
    assert admin["keys"]["HIGHFLAME_INTERNAL_SERVICE_SECRET"] == \
        "from k8s:highflame-platform-secrets/internal-service-secret"
    assert listing[0]["keys"]["jwt-secret-key"].startswith("generated once")


def test_a_secret_mixing_a_reference_and_generated_keys_is_made_in_two_halves() -> None:
    spec = SecretSpec("clickhouse-secrets", "users", {
        "CH_ADMIN_PASSWORD": SecretEntry(ref="k8s:highflame-platform-secrets/clickhouse-admin-password"),
        "CH_READONLY_PASSWORD": SecretEntry(generate=Generate("urlsafe", 24)),
    })
    refs, made = part(spec, generated=False), part(spec, generated=True)
    assert (set(refs.entries), set(made.entries)) == ({"CH_ADMIN_PASSWORD"}, {"CH_READONLY_PASSWORD"})
    assert made.is_generated and not spec.is_generated and refs.name == made.name == spec.name
    with pytest.raises(ValueError):
        materialize(spec, lambda ref: "x")  # the whole spec is neither
    assert materialize(refs, lambda ref: "admin") == {"CH_ADMIN_PASSWORD": "admin"}
    kept = generate(made, {"CH_READONLY_PASSWORD": "kept", "CH_ADMIN_PASSWORD": "old"})
    assert kept == {"CH_READONLY_PASSWORD": "kept"}
