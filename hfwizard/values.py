"""The one module that knows the charts' values layout: profile -> Helm values and Kubernetes Secrets.

When Highflame's real chart schema differs from the bundled reference charts, only this module changes.
Values never hold a secret: they name the Kubernetes Secrets (and keys) the install creates from the
profile's references, or the Secrets a `k8s:` reference points at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hfwizard.profile import Cloud, InstallProfile, ModuleName, clerk_frontend_host
from hfwizard.secrets import RefKind, parse_ref

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "hfwizard"


@dataclass(frozen=True)
class SecretSpec:
    """A Kubernetes Secret the install creates: each key maps to the reference its value comes from."""

    name: str
    type: str = "Opaque"
    entries: dict[str, str] = field(default_factory=dict)  # key -> secret reference (env:, file:, keyring:)
    generated: tuple[str, ...] = ()  # keys whose value the install generates once and keeps
    purpose: str = ""

    @property
    def references(self) -> list[str]:
        return list(self.entries.values())


@dataclass(frozen=True)
class ReleaseSpec:
    """One Helm release the install makes."""

    key: str  # "clickhouse" or "highflame": the chart in profile.charts
    release: str
    chart_ref: str
    chart_repo: str | None
    chart_version: str | None
    values: dict[str, Any]
    # A chart source (repository URL or mirror folder, `hfwizard.platform.charts`): the chart is
    # fetched and its digest checked before Helm sees it; `chart_ref` is then the chart's name.
    source: str | None = None


def secret_name(profile: InstallProfile, suffix: str) -> str:
    return f"{profile.target.release}-{suffix}"


def _secret_source(profile: InstallProfile, ref: str | None, suffix: str, key: str) -> dict[str, str] | None:
    """Where a chart reads one secret: our Secret, or the Secret a `k8s:` reference already names."""
    if ref is None:
        return None
    parsed = parse_ref(ref)
    if parsed.kind is RefKind.K8S:
        name, k = parsed.k8s_secret
        return {"existingSecret": name, "key": k}
    return {"existingSecret": secret_name(profile, suffix), "key": key}


def secrets(profile: InstallProfile) -> list[SecretSpec]:
    """The Secrets the install creates from references (a `k8s:` reference needs none: it exists)."""
    out: list[SecretSpec] = []

    def add(suffix: str, purpose: str, entries: dict[str, str | None], type_: str = "Opaque") -> None:
        kept = {k: v for k, v in entries.items() if v is not None and parse_ref(v).kind is not RefKind.K8S}
        if kept:
            out.append(SecretSpec(secret_name(profile, suffix), type_, kept, purpose=purpose))

    add("postgres", "PostgreSQL password", {"password": profile.postgres.password})
    add("redis", "Redis AUTH", {"password": profile.redis.password})
    add("clerk", "Clerk secret key", {"secretKey": profile.clerk.secret_key})
    add("model-api-keys", "AI model API keys", dict(profile.platform.model_api_keys))
    add("clickhouse-backup", "ClickHouse backup credentials", {"credentials": profile.clickhouse.backup.credentials})
    tls = profile.ingress.tls
    if profile.ingress.enabled and tls.enabled:
        add("tls", "ingress TLS certificate", {"tls.crt": tls.certificate, "tls.key": tls.private_key},
            "kubernetes.io/tls")
    if profile.images.pull_secret is not None:
        # .dockerconfigjson is assembled by the engine from the user name and this token.
        add("registry", f"pull secret for {profile.images.registry}", {"token": profile.images.pull_secret},
            "kubernetes.io/dockerconfigjson")
    out.append(SecretSpec(secret_name(profile, "clickhouse-auth"), generated=("password",),
                          purpose="ClickHouse password (generated once)"))
    return out


def clickhouse_release(profile: InstallProfile) -> str:
    return f"{profile.target.release}-clickhouse"


def _image_values(profile: InstallProfile) -> dict[str, Any]:
    return {
        "imageRegistry": profile.images.registry,
        "imageRepository": profile.images.repository,
        "imageTag": profile.images.tag,
        "imagePullSecrets": _pull_secrets(profile),
    }


def clickhouse_values(profile: InstallProfile) -> dict[str, Any]:
    ch = profile.clickhouse
    b = ch.backup
    return {
        "global": _image_values(profile),
        "replicas": ch.replicas,
        "persistence": {"size": ch.storage_size, "storageClass": ch.storage_class},
        "auth": {"existingSecret": secret_name(profile, "clickhouse-auth"), "key": "password"},
        "backup": {
            "enabled": b.bucket is not None,
            "provider": b.provider.value,
            "bucket": b.bucket,
            "prefix": b.prefix,
            "region": b.region or profile.target.region,
            "account": b.account,
            "schedule": b.schedule,
            "retentionDays": b.retention_days,
            "credentials": _secret_source(profile, b.credentials, "clickhouse-backup", "credentials"),
        },
    }


def _pull_secrets(profile: InstallProfile) -> list[dict[str, str]]:
    ref = profile.images.pull_secret
    if ref is None:
        return []
    parsed = parse_ref(ref)
    name = parsed.k8s_secret[0] if parsed.kind is RefKind.K8S else secret_name(profile, "registry")
    return [{"name": name}]


def _module_values(profile: InstallProfile) -> dict[str, Any]:
    nodes = profile.sizing.nodes
    # Requests sized so the default replica counts fit the smallest allowed cluster with room for
    # ClickHouse and system pods: a tenth of a node's cores and an eighth of its memory per pod.
    cpu_m = nodes.cores * 100
    mem_mi = nodes.memory_gib * 128
    out: dict[str, Any] = {}
    for name, mod in profile.modules.items():
        out[name.value] = {
            "enabled": mod.enabled,
            "replicas": mod.replicas,
            "hpa": {"enabled": mod.hpa.enabled, "minReplicas": mod.hpa.min_replicas,
                    "maxReplicas": mod.hpa.max_replicas, "targetCPUUtilizationPercentage": mod.hpa.target_cpu_percent},
            "pdb": {"enabled": mod.pdb.enabled, "minAvailable": mod.pdb.min_available},
            "resources": {"requests": {"cpu": f"{cpu_m}m", "memory": f"{mem_mi}Mi"},
                          "limits": {"cpu": f"{cpu_m * 4}m", "memory": f"{mem_mi * 2}Mi"}},
        }
    return out


def _ingress_values(profile: InstallProfile) -> dict[str, Any]:
    ing = profile.ingress
    tls = ing.tls
    annotations: dict[str, str] = {}
    if tls.enabled and tls.acm_certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = tls.acm_certificate_arn
        annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTPS":443}]'
    if tls.enabled and tls.issuer:
        annotations["cert-manager.io/cluster-issuer"] = tls.issuer
    if profile.target.cloud is Cloud.GCP and tls.enabled:
        annotations.setdefault("kubernetes.io/ingress.allow-http", "false")
    annotations.update(ing.annotations)  # the operator's own annotations win
    secret: str | None = None
    if tls.enabled and not tls.acm_certificate_arn:
        if tls.existing_secret:
            secret = tls.existing_secret
        elif tls.certificate is not None and parse_ref(tls.certificate).kind is RefKind.K8S:
            secret = parse_ref(tls.certificate).k8s_secret[0]
        else:
            secret = secret_name(profile, "tls")  # ours, or the one cert-manager writes
    return {
        "enabled": ing.enabled,
        "className": ing.class_name,
        "host": ing.domain,
        "annotations": annotations,
        "tls": {"enabled": tls.enabled, "secretName": secret},
    }


def highflame_values(profile: InstallProfile) -> dict[str, Any]:
    pg, rd, clerk = profile.postgres, profile.redis, profile.clerk
    keys = sorted(profile.platform.model_api_keys)
    return {
        "global": {
            **_image_values(profile),
            "logLevel": profile.platform.log_level,
            "cloud": profile.target.cloud.value,
        },
        "modules": _module_values(profile),
        "postgres": {
            "host": pg.host, "port": pg.port, "database": pg.database, "user": pg.user,
            "sslmode": pg.sslmode.value,
            "password": _secret_source(profile, pg.password, "postgres", "password"),
        },
        "redis": {
            "endpoints": list(rd.endpoints), "tls": rd.tls, "username": rd.username, "clusterMode": True,
            "password": _secret_source(profile, rd.password, "redis", "password"),
        },
        "clickhouse": _clickhouse_client(profile),
        "clerk": {
            "publishableKey": clerk.publishable_key,
            "frontendApi": clerk_frontend_host(clerk.publishable_key) if clerk.publishable_key else None,
            "secretKey": _secret_source(profile, clerk.secret_key, "clerk", "secretKey"),
        },
        # Per provider: a `k8s:` reference points at its own Secret, the others at ours.
        "modelApiKeys": [
            {"provider": name, **(_secret_source(profile, profile.platform.model_api_keys[name], "model-api-keys", name)
                                  or {})}
            for name in keys
        ],
        "ingress": _ingress_values(profile),
    }


def _clickhouse_client(profile: InstallProfile) -> dict[str, Any]:
    """Where the modules reach ClickHouse: the operator's server Service and the admin user's password."""
    from hfwizard.platform import clickhouse as ch  # it builds on this module's SecretSpec

    ends = ch.service_endpoints(profile)
    secret, key = ends.password_secret
    return {"host": ends.host, "port": ends.http_port, "user": ends.username, "database": ends.database,
            "password": {"existingSecret": secret, "key": key}}


def releases(profile: InstallProfile) -> list[ReleaseSpec]:
    """The Helm releases of an install, in install order (ClickHouse first: the platform needs it)."""
    ch, hf = profile.charts.clickhouse, profile.charts.highflame
    return [
        ReleaseSpec("clickhouse", clickhouse_release(profile), ch.ref, ch.repo, ch.version, clickhouse_values(profile)),
        ReleaseSpec("highflame", profile.target.release, hf.ref, hf.repo, hf.version, highflame_values(profile)),
    ]


def enabled_modules(profile: InstallProfile) -> list[ModuleName]:
    return [name for name, mod in profile.modules.items() if mod.enabled]
