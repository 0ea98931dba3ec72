"""The platform's Secrets besides each service's env Secret: prerequisites from the profile, and generated ones.

Prerequisites are the Secrets Highflame's manual procedure creates by hand (registry, license, Redis CA,
GCP credential, feature flags) plus the ingress TLS Secret; the generated ones hold what nobody is asked for
(internal secrets, JWT and OAuth signing keys), made once and kept in the cluster.
"""

from __future__ import annotations

from importlib import resources

from hfwizard.platform.catalog import Catalog
from hfwizard.platform.secretspec import Generate, SecretEntry, SecretSpec
from hfwizard.profile import Cloud, InstallProfile

REGISTRY_SECRET = "highflame-registry-secret"
LICENSE_SECRET = "highflame-license"
REDIS_CA_SECRET = "highflame-redis-cert"
GCP_CRED_SECRET = "highflame-gcp-cred"
GOFF_SECRET = "highflame-goff"
TLS_SECRET = "highflame-tls"
PLATFORM_SECRETS = "highflame-platform-secrets"
AUTH_KEYS_SECRET = "highflame-auth-keys"
OAUTH_KEYS_SECRET = "highflame-oauth-keys"
SIGNING_KEYS_SECRET = "highflame-signing-keys"

_HEX = Generate("hex", 32)


def generated_secrets(catalog: Catalog | None = None) -> list[SecretSpec]:
    """Secrets hfwizard generates once per install and keeps (resume and upgrade reuse the cluster's copy).

    The catalog argument is for later releases that need more keys; today every release needs these.
    """
    return [
        SecretSpec(PLATFORM_SECRETS, "platform secrets nobody is asked for", {
            "internal-service-secret": SecretEntry(generate=_HEX),
            "jwt-secret-key": SecretEntry(generate=_HEX),
            "token-encryption-key": SecretEntry(generate=_HEX),
            "marketplace-jwt-secret": SecretEntry(generate=_HEX),
            "oauth-signing-key-id": SecretEntry(generate=Generate("hex", 8)),
            "clickhouse-admin-password": SecretEntry(generate=Generate("urlsafe", 24)),
        }),
        SecretSpec(AUTH_KEYS_SECRET, "JWT signing key pair (authn, studio; cerberus reads the public key)", {
            "jwt-private.pem": SecretEntry(generate=Generate("rsa-private", 3072)),
            "jwt-public.pem": SecretEntry(generate=Generate("rsa-public", from_key="jwt-private.pem")),
        }),
        SecretSpec(OAUTH_KEYS_SECRET, "OAuth assertion signing key (studio)", {
            "oauth-signing-key.pem": SecretEntry(generate=Generate("rsa-private", 3072)),
        }),
        # Highflame's guide creates this from a folder it does not describe; authz reads the keys under
        # /app/keys. A key pair in PEM is what an authorization signer needs.
        SecretSpec(SIGNING_KEYS_SECRET, "authorization signing key pair (authz)", {
            "private.pem": SecretEntry(generate=Generate("rsa-private", 3072)),
            "public.pem": SecretEntry(generate=Generate("rsa-public", from_key="private.pem")),
        }),
    ]


def generated_ref(key: str) -> str:
    """The `k8s:` reference of one key of the generated platform Secret."""
    return f"k8s:{PLATFORM_SECRETS}/{key}"


def prerequisite_secrets(profile: InstallProfile, catalog: Catalog) -> list[SecretSpec]:
    """Secrets made from the profile's references before any service is installed.

    A Secret whose content the profile does not give is left out (its mount is optional or preflight names
    the missing field: see `missing_inputs`), except the feature-flag one, which has a built-in default.
    """
    out: list[SecretSpec] = []
    images = profile.images
    if images.pull_secret is not None:
        server = (images.mirror or catalog.images.registry).split("/", 1)[0]
        out.append(SecretSpec(REGISTRY_SECRET, f"image pull credentials for {server}", {
            ".dockerconfigjson": SecretEntry(ref=images.pull_secret, docker_server=server,
                                             docker_username=images.pull_username or "highflame"),
        }, type="kubernetes.io/dockerconfigjson"))
    lic = profile.platform.license
    entries = {k: SecretEntry(ref=r) for k, r in (("license.jwt", lic.jwt), ("public.pem", lic.public_key)) if r}
    if entries:
        out.append(SecretSpec(LICENSE_SECRET, "Highflame license", entries))
    if profile.redis.tls and profile.redis.ca_cert:
        out.append(SecretSpec(REDIS_CA_SECRET, "CA of the Redis nodes' certificates", {
            "redis-ca.pem": SecretEntry(ref=_file_ref(profile.redis.ca_cert))}))
    if profile.platform.gcp_credential:
        out.append(SecretSpec(GCP_CRED_SECRET, "Google credential for shield (Model Armor)", {
            "gcp-credential.json": SecretEntry(ref=profile.platform.gcp_credential)}))
    flags = profile.platform.feature_flags
    out.append(SecretSpec(GOFF_SECRET, "feature-flag relay configuration", {
        "goff.yaml": SecretEntry(ref=flags) if flags else SecretEntry(default=default_goff("goff.yaml")),
        "flags.yaml": SecretEntry(default=default_goff("flags.yaml")),
    }))
    tls = profile.ingress.tls
    if profile.ingress.enabled and tls.enabled and tls.certificate and tls.private_key:
        out.append(SecretSpec(TLS_SECRET, "ingress TLS certificate", {
            "tls.crt": SecretEntry(ref=tls.certificate), "tls.key": SecretEntry(ref=tls.private_key)},
            type="kubernetes.io/tls"))
    return out


def default_goff(name: str) -> str:
    """The built-in feature-flag relay configuration (goff.yaml) and its flag file (flags.yaml)."""
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


def missing_inputs(profile: InstallProfile, catalog: Catalog) -> list[str]:
    """Profile fields the real platform cannot run without, each as `field: why` (for preflight).

    The sandbox starts no containers, so it needs none of them.
    """
    if profile.target.cloud is Cloud.SANDBOX:
        return []
    need: list[str] = []
    lic = profile.platform.license
    if not lic.jwt:
        need.append("platform.license.jwt: the license token Highflame issued (file:PATH to license.jwt)")
    if not lic.public_key:
        need.append("platform.license.publicKey: the license's public key (file:PATH to public.pem)")
    if profile.images.pull_secret is None:
        need.append(f"images.pullSecret: a token that may pull from {catalog.images.registry}/highflame-ai")
    if not profile.postgres.host or profile.postgres.password is None:
        need.append("postgres.host and postgres.password: the managed PostgreSQL the services use")
    if not profile.redis.endpoints:
        need.append("redis.endpoints: the Redis cluster the services use")
    if not profile.clerk.publishable_key or profile.clerk.secret_key is None:
        need.append("clerk.publishableKey and clerk.secretKey: sign-in for studio and admin")
    if not profile.ingress.domain:
        need.append("ingress.domain: the six public hosts are made from it")
    return need


def _file_ref(path: str) -> str:
    return path if path.startswith("file:") else f"file:{path}"
