"""Profile + platform catalog -> one Helm release per service, with its values and its env Secret spec.

The one place that knows the real charts' values layout (highflame-generic, highflame-redteam,
highflame-ingress). Values never hold a secret: a service's secret variables live in its env Secret
(`<release>-env`, made by the engine from the spec) and reach the pod through the chart's
`additionalEnvFrom`; non-secret variables go into the chart's own ConfigMap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hfwizard.platform import ingress
from hfwizard.platform.catalog import CORE, Catalog, Service, deep_merge, load_catalog
from hfwizard.platform.facts import PROFILE_FACTS, SECRET_SOURCES, MissingSetting, public_url
from hfwizard.platform.secretsets import (
    PLATFORM_SECRETS,
    REDIS_CA_SECRET,
    REGISTRY_SECRET,
    generated_ref,
    prerequisite_secrets,
)
from hfwizard.platform.secretspec import SecretEntry, SecretSpec
from hfwizard.profile import Cloud, InstallProfile, Module

_SECRET_RULES = [{"apiGroups": [""], "resources": ["secrets"],
                  "verbs": ["get", "list", "create", "update", "patch", "delete"]}]
_IDENTITY_KEYS = {Cloud.AWS: "eks.amazonaws.com/role-arn", Cloud.GCP: "iam.gke.io/gcp-service-account",
                  Cloud.AZURE: "azure.workload.identity/client-id"}


@dataclass(frozen=True)
class ServiceRelease:
    """One Helm release of the platform: what to install, with which values, after which releases."""

    service: str
    """Catalog name (admin, guard-deepcontext, ...; `ingress` for GKE's shared ingress)."""
    release: str
    """Helm release name, also the name of its Deployment and Service (highflame-admin)."""
    chart: str
    version: str
    values: dict[str, Any]
    """Helm values; they hold no secret value."""
    depends_on: tuple[str, ...]
    """Release names that must be ready before this one is installed."""
    module: str
    """Seed module it belongs to, or `core`."""
    env_secret: SecretSpec | None
    """The Secret (`<release>-env`) the engine makes before the release; None when it reads no secret."""
    secrets_used: tuple[str, ...] = ()
    """Prerequisite / generated Secrets it mounts or reads (make them before the release)."""
    waits: int = 1
    """Readiness waits in a row while Helm installs it: 1, plus its chart's hook Jobs (catalog hookWaits)."""


def enabled_services(profile: InstallProfile, catalog: Catalog) -> list[str]:
    """Catalog services the profile's modules keep: core always, a module's services when it is on."""
    return [name for name, svc in catalog.services.items() if svc.module == CORE or _module(profile, svc).enabled]


def service_releases(profile: InstallProfile, catalog: Catalog | None = None) -> list[ServiceRelease]:
    """Every release to install, in an order that respects `depends_on` (GKE's shared ingress last)."""
    catalog = catalog or load_catalog(profile.platform.version)
    enabled = enabled_services(profile, catalog)
    unknown = sorted(set(profile.services) - set(catalog.services) - {"ingress"})
    if unknown:
        raise MissingSetting(f"services.{unknown[0]}: no such service in platform {catalog.platform}",
                             remedy=f"services are: {', '.join(catalog.services)}")
    made = {s.name for s in prerequisite_secrets(profile, catalog)}
    out = [_release(profile, catalog, name, enabled, made) for name in _ordered(catalog, enabled)]
    if profile.ingress.enabled and profile.target.cloud is Cloud.GCP:
        pin = catalog.charts.ingress
        routed = tuple(r.release for r in out if catalog.services[r.service].routes)
        override = profile.services.get("ingress")
        values = deep_merge(ingress.gke_ingress_values(profile, catalog, enabled),
                            override.values if override else {})
        out.append(ServiceRelease("ingress", ingress.GKE_INGRESS_RELEASE, pin.name, pin.version, values,
                                  routed, CORE, None))
    return out


def databases(profile: InstallProfile, catalog: Catalog | None = None) -> list[str]:
    """Databases the enabled services use on the managed PostgreSQL, in the catalog's order."""
    catalog = catalog or load_catalog(profile.platform.version)
    used = {db for name in enabled_services(profile, catalog) for db in catalog.services[name].databases}
    return [db for db in catalog.databases if db in used]


def env_secrets(profile: InstallProfile, catalog: Catalog | None = None) -> list[SecretSpec]:
    """The env Secret of every enabled service (the same specs the releases carry)."""
    return [r.env_secret for r in service_releases(profile, catalog) if r.env_secret is not None]


def image_repository(profile: InstallProfile, catalog: Catalog, name: str) -> str:
    """`<registry>/highflame-ai/release-highflame-<image>`; a registry mirror replaces the registry."""
    svc = catalog.services[name]
    path = catalog.images.repository.format(image=svc.image or name)
    return f"{(profile.images.mirror or catalog.images.registry).rstrip('/')}/{path}"


def _ordered(catalog: Catalog, enabled: list[str]) -> list[str]:
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for dep in catalog.services[name].wait_for:
            if dep in enabled:
                visit(dep)
        done.append(name)

    for name in enabled:
        visit(name)
    return done


def _module(profile: InstallProfile, svc: Service) -> Module:
    return getattr(profile.modules, _snake(svc.module))


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def _release(profile: InstallProfile, catalog: Catalog, name: str, enabled: list[str],
             made: set[str]) -> ServiceRelease:
    svc = catalog.services[name]
    release = catalog.release_name(name)
    plain, secret = _env(profile, catalog, name)
    env_spec = SecretSpec(f"{release}-env", f"environment of {release}", secret) if secret else None
    values = _values(profile, catalog, name, plain, env_spec, made)
    override = profile.services.get(name)
    if override is not None:
        values = deep_merge(values, override.values)
    pin = catalog.chart_pin(name)
    deps = tuple(catalog.release_name(d) for d in svc.wait_for if d in enabled)
    used = {m.secret for m in svc.mounts if m.secret in made or not m.optional}
    if any(e.ref and e.ref.startswith(generated_ref("")) for e in secret.values()):
        used.add(PLATFORM_SECRETS)
    if REGISTRY_SECRET in made:
        used.add(REGISTRY_SECRET)
    if REDIS_CA_SECRET in made and "REDIS_CACERT" in svc.env:
        used.add(REDIS_CA_SECRET)
    return ServiceRelease(name, release, pin.name, pin.version, values, deps, svc.module, env_spec,
                          tuple(sorted(used)), waits=1 + svc.hook_waits)


def _env(profile: InstallProfile, catalog: Catalog, name: str) -> tuple[dict[str, str], dict[str, SecretEntry]]:
    """Split a service's environment into plain text (ConfigMap) and secret entries (env Secret)."""
    plain: dict[str, str] = {}
    secret: dict[str, SecretEntry] = {}
    for var, source in catalog.services[name].env.items():
        kind, _, arg = source.partition(":")
        if kind == "fixed":
            plain[var] = arg
        elif kind == "url":
            target, slash, rest = arg.partition("/")
            plain[var] = catalog.in_cluster_url(target, slash + rest)
        elif kind == "public":
            host, slash, rest = arg.partition("/")
            plain[var] = public_url(profile, host, slash + rest)
        elif kind == "profile":
            value = _fact(profile, catalog, arg)
            if value is not None:
                plain[var] = value
        elif kind == "generated":
            secret[var] = SecretEntry(ref=generated_ref(arg))
        else:
            if arg not in SECRET_SOURCES:
                raise KeyError(f"catalog source secret:{arg} is not defined in platform/facts.py")
            entry = SECRET_SOURCES[arg](profile, catalog)
            if entry is not None:
                secret[var] = entry
    return plain, secret


def _fact(profile: InstallProfile, catalog: Catalog, name: str) -> str | None:
    if name not in PROFILE_FACTS:
        raise KeyError(f"catalog source profile:{name} is not defined in platform/facts.py")
    return PROFILE_FACTS[name](profile, catalog)


def _values(profile: InstallProfile, catalog: Catalog, name: str, plain: dict[str, str],
            env_spec: SecretSpec | None, made: set[str]) -> dict[str, Any]:
    svc = catalog.services[name]
    release = catalog.release_name(name)
    generic = svc.chart == "generic"
    probe_port = svc.probes.port or svc.port
    node_selector = {profile.sizing.node_groups.label: getattr(profile.sizing.node_groups, svc.node_group)}
    values: dict[str, Any] = {
        "fullnameOverride": release,
        "image": {"repository": image_repository(profile, catalog, name),
                  "tag": profile.images.tag or catalog.images.tag, "pullPolicy": "IfNotPresent"},
        "imagePullSecrets": [{"name": REGISTRY_SECRET}] if REGISTRY_SECRET in made else [],
        "service": _service(profile, svc),
        "livenessProbe": _probe(svc.probes.liveness, probe_port),
        "readinessProbe": _probe(svc.probes.readiness, probe_port),
        "nodeSelector": node_selector,
        "resources": svc.resources.model_dump(),
        "podRestart": {"enabled": svc.restart_on_upgrade},
        "confimaps": {"enabled": bool(plain), "configMapData": plain},
        "secrets": {"enabled": False},
        "additionalEnvFrom": {"enabled": env_spec is not None,
                              "items": [{"secretRef": {"name": env_spec.name}}] if env_spec else []},
        "serviceAccount": _service_account(profile, svc, name, generic),
        "ingress": ingress.service_ingress(profile, catalog, name),
        **_scaling(profile, svc),
        **_volumes(profile, svc, made),
    }
    if svc.node_group == "gpu":
        # GPU node groups are commonly tainted (EKS's GPU AMIs, GKE's GPU pools); tolerating the taint is
        # harmless where there is none.
        values["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if profile.target.cloud is Cloud.AZURE and values["serviceAccount"].get("annotations"):
        values["podLabels"] = {"azure.workload.identity/use": "true"}
    if profile.target.cloud is Cloud.GCP and profile.ingress.enabled and svc.routes:
        values["gceIngress"] = ingress.gke_backend_config(profile, svc)
        values["service"]["annotations"] = {"cloud.google.com/backend-config": f'{{"default": "{release}-default"}}'}
    extra = svc.extra_values
    if not generic:
        extra = _redteam_workers(extra, node_selector)
    return deep_merge(values, extra)


def _service(profile: InstallProfile, svc: Service) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ingress.service_type(profile, svc), "protocol": "TCP", "port": svc.port}
    if svc.ports:
        out["ports"] = [{"name": n, "port": p} for n, p in svc.ports.items()]
    return out


def _probe(path: str, port: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "initialDelaySeconds": 15, "periodSeconds": 10,
            "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 2}


def _scaling(profile: InstallProfile, svc: Service) -> dict[str, Any]:
    """Replicas, HPA and PDB: a module's settings from the profile, core services from the catalog."""
    if svc.module == CORE:
        auto = svc.autoscaling
        hpa = {"enabled": auto.enabled, "minReplicas": auto.min, "maxReplicas": auto.max,
               "targetCPUUtilizationPercentage": 80, "targetMemoryUtilizationPercentage": 80}
        replicas = auto.min if auto.enabled else 1
        pdb: dict[str, Any] = {"enabled": True, "maxUnavailable": 1}
    else:
        mod = _module(profile, svc)
        on = mod.hpa.enabled and svc.autoscaling.enabled
        hpa = {"enabled": on, "minReplicas": mod.hpa.min_replicas, "maxReplicas": mod.hpa.max_replicas,
               "targetCPUUtilizationPercentage": mod.hpa.target_cpu_percent,
               "targetMemoryUtilizationPercentage": 80}
        replicas = mod.replicas
        if mod.pdb.enabled and mod.pdb.min_available > 0:
            # null drops the chart's default maxUnavailable: a PDB takes one of the two, never both.
            pdb = {"enabled": True, "minAvailable": mod.pdb.min_available, "maxUnavailable": None}
        else:
            pdb = {"enabled": False}
    return {"replicaCount": replicas, "autoscaling": hpa, "podDisruptionBudget": pdb}


def _service_account(profile: InstallProfile, svc: Service, name: str, generic: bool) -> dict[str, Any]:
    # Only services that call the Kubernetes API or the cloud get a token mounted (Highflame mounts one
    # everywhere; nothing else reads it).
    out: dict[str, Any] = {"create": True, "automount": svc.service_account.secrets_access
                           or svc.service_account.cloud_identity, "annotations": {}}
    ident = profile.identity
    key = _IDENTITY_KEYS.get(profile.target.cloud)
    if svc.service_account.cloud_identity and key:
        default = {Cloud.AWS: ident.aws_role_arn, Cloud.GCP: ident.gcp_service_account,
                   Cloud.AZURE: ident.azure_client_id}[profile.target.cloud]
        who = ident.services.get(name, default)
        if who:
            out["annotations"] = {key: who}
    if generic:
        # The generic chart's Role reads serviceAccount.rules (Highflame's templates put them under
        # serviceAccount.role.rules, which the chart ignores, leaving the Role empty).
        out["rules"] = _SECRET_RULES if svc.service_account.secrets_access else []
    return out


def _volumes(profile: InstallProfile, svc: Service, made: set[str]) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = []
    volume_mounts: list[dict[str, Any]] = []
    for m in svc.mounts:
        if m.optional and m.secret not in made:
            continue  # an optional Secret the profile gives no content for is not made, so not mounted
        vol = m.secret.removeprefix("highflame-")
        if not any(v["name"] == vol for v in volumes):
            volumes.append({"name": vol, "secret": {"secretName": m.secret, "optional": m.optional}})
        mount: dict[str, Any] = {"name": vol, "mountPath": m.path, "readOnly": True}
        if m.key:
            mount["subPath"] = m.key
        volume_mounts.append(mount)
    if REDIS_CA_SECRET in made and "REDIS_CACERT" in svc.env:
        volumes.append({"name": "redis-cert", "secret": {"secretName": REDIS_CA_SECRET, "optional": False}})
        volume_mounts.append({"name": "redis-cert", "mountPath": "/app/certs/redis-ca.pem", "readOnly": True,
                              "subPath": "redis-ca.pem"})
    return {"volumes": volumes, "volumeMounts": volume_mounts}


def _redteam_workers(extra: dict[str, Any], node_selector: dict[str, str]) -> dict[str, Any]:
    """The red-teaming chart's worker Deployments and seeder Job run on the general node group too."""
    out = dict(extra)
    for part in ("worker", "palisadeWorker"):
        if out.get(part, {}).get("enabled", True):
            out[part] = deep_merge(out.get(part, {}), {"nodeSelector": node_selector})
    return out


def all_secrets(profile: InstallProfile, catalog: Catalog | None = None) -> list[SecretSpec]:
    """Every Secret the install makes, in the order to make them: generated, prerequisites, env Secrets."""
    from hfwizard.platform.secretsets import generated_secrets

    catalog = catalog or load_catalog(profile.platform.version)
    return [*generated_secrets(catalog), *prerequisite_secrets(profile, catalog), *env_secrets(profile, catalog)]
