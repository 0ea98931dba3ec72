"""What the catalog's `profile:` and `secret:` environment sources mean: one function per name.

`profile:` facts are non-secret text (they go into the chart's ConfigMap); `secret:` sources are
SecretEntry specs (references, templates) that go into the service's env Secret. A function returning None
means the profile does not set it, and the variable is left out.
"""

from __future__ import annotations

from collections.abc import Callable

from hfwizard.errors import BadInput
from hfwizard.platform.catalog import Catalog
from hfwizard.platform.secretspec import SecretEntry
from hfwizard.profile import InstallProfile, SslMode

Fact = Callable[[InstallProfile, Catalog], str | None]
Source = Callable[[InstallProfile, Catalog], SecretEntry | None]

# Highflame's services accept only these two (service-vars.md); anything that verifies or insists on TLS is
# "require" to them (they do not verify the server certificate).
_PG_PLAIN = {SslMode.DISABLE, SslMode.ALLOW, SslMode.PREFER}


class MissingSetting(BadInput):
    """The platform needs a profile field that is not set."""


def domain(profile: InstallProfile) -> str:
    if not profile.ingress.domain:
        raise MissingSetting("ingress.domain is not set: the platform's six hosts (control., api., gateway., "
                             "auth., discovery., studio.) are made from it",
                             remedy="set ingress.domain to the domain the platform is served under")
    return profile.ingress.domain


def public_url(profile: InstallProfile, host: str, path: str = "") -> str:
    scheme = "https" if profile.ingress.tls.enabled else "http"
    return f"{scheme}://{host}.{domain(profile)}{path}"


def _redis_endpoint(profile: InstallProfile) -> tuple[str, str] | None:
    if not profile.redis.endpoints:
        return None
    host, _, port = profile.redis.endpoints[0].rpartition(":")
    return host, port


def _redis_host(p: InstallProfile, c: Catalog) -> str | None:
    ep = _redis_endpoint(p)
    return ep[0] if ep else None


def _redis_port(p: InstallProfile, c: Catalog) -> str | None:
    ep = _redis_endpoint(p)
    return ep[1] if ep else None


def _ch_host(p: InstallProfile, c: Catalog) -> str:
    # The server Service the operator makes for the profile's installation, where hfwizard puts it
    # (the catalog's clickhouse.service/namespace are Highflame's defaults, not this install's).
    from hfwizard.platform.clickhouse import service_endpoints

    return f"{service_endpoints(p).host}.cluster.local"


REDIS_CA_PATH = "/app/certs/redis-ca.pem"

PROFILE_FACTS: dict[str, Fact] = {
    "postgres.host": lambda p, c: p.postgres.host,
    "postgres.port": lambda p, c: str(p.postgres.port),
    "postgres.user": lambda p, c: p.postgres.user,
    "postgres.sslmode": lambda p, c: "disable" if p.postgres.sslmode in _PG_PLAIN else "require",
    "redis.host": _redis_host,
    "redis.port": _redis_port,
    "redis.tls": lambda p, c: "true" if p.redis.tls else "false",
    "redis.user": lambda p, c: p.redis.username,
    "redis.cacertPath": lambda p, c: REDIS_CA_PATH if p.redis.tls and p.redis.ca_cert else "",
    "clickhouse.host": _ch_host,
    "clickhouse.endpoint": lambda p, c: f"tcp://{_ch_host(p, c)}:9000",
    "clickhouse.database": lambda p, c: c.clickhouse.database,
    "clickhouse.user": lambda p, c: c.clickhouse.user,
    "clerk.publishableKey": lambda p, c: p.clerk.publishable_key,
    "domain": lambda p, c: domain(p),
    "platform.accountId": lambda p, c: p.platform.account_id,
    "gcp.project": lambda p, c: p.credentials.gcp.project if p.credentials.gcp else None,
    "aws.region": lambda p, c: p.target.region if p.target.cloud.value == "aws" else None,
    "model.provider": lambda p, c: p.platform.model.provider.value,
    "model.name": lambda p, c: p.platform.model.name,
    "model.apiBase": lambda p, c: p.platform.model.api_base,
    "model.azureApiBase": lambda p, c: p.platform.model.api_base if _provider(p) == "azure" else None,
    "model.azureApiVersion": lambda p, c: p.platform.model.api_version if _provider(p) == "azure" else None,
    "model.bedrockRegion": lambda p, c: p.platform.model.bedrock_region if _provider(p) == "bedrock" else None,
}


def _provider(p: InstallProfile) -> str:
    return p.platform.model.provider.value


def _ref(ref: str | None) -> SecretEntry | None:
    return SecretEntry(ref=ref) if ref else None


def _model_key(p: InstallProfile) -> str | None:
    model = p.platform.model
    return model.api_key or p.platform.model_api_keys.get(model.provider.value)


def _redis_url(p: InstallProfile, c: Catalog) -> SecretEntry | None:
    ep = _redis_endpoint(p)
    if ep is None:
        return None
    scheme = "rediss" if p.redis.tls else "redis"
    hostport = f"{ep[0]}:{ep[1]}"
    if p.redis.password is None:
        return SecretEntry(default=f"{scheme}://{hostport}")
    user = p.redis.username or "default"
    return SecretEntry(ref=p.redis.password, url_quote=True, template=f"{scheme}://{user}:{{}}@{hostport}")


SECRET_SOURCES: dict[str, Source] = {
    "postgres.password": lambda p, c: _ref(p.postgres.password),
    "redis.password": lambda p, c: _ref(p.redis.password),
    "redis.url": _redis_url,
    "clerk.secretKey": lambda p, c: _ref(p.clerk.secret_key),
    "platform.modelsSecret": lambda p, c: _ref(p.platform.models_secret),
    "model.apiKey": lambda p, c: _ref(_model_key(p)),
    "model.openaiKey": lambda p, c: _ref(_model_key(p)) if _provider(p) == "openai" else None,
    "model.azureKey": lambda p, c: _ref(_model_key(p)) if _provider(p) == "azure" else None,
    "model.hfToken": lambda p, c: _ref(p.platform.model.hf_token),
    "model.bedrockAccessKey": lambda p, c: _ref(p.platform.model.bedrock_access_key),
    "model.bedrockSecretKey": lambda p, c: _ref(p.platform.model.bedrock_secret_key),
}
