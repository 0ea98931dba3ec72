"""Helpers of the day-two tests: a few of Highflame's real services installed through an explicit plan
(real charts fetched by the charts step from Highflame's chart folder, EKS values templates, real Helm, the
emulated API) into a saved install."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import yaml

from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.engine.kube import Kube, connect
from hfwizard.engine.plan import CHARTS_STEP, Plan, Step, StepKind
from hfwizard.events import Event
from hfwizard.platform.secretspec import Generate, SecretEntry, SecretSpec
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import save_profile
from hfwizard.store.install_dir import InstallDir
from tests import platform_support

HIGHFLAME = platform_support.HIGHFLAME
CHARTS = HIGHFLAME / "charts"
VALUES = HIGHFLAME / "iac" / "helm-values" / "EKS"
DOMAIN = "hf.example.test"
NS = "highflame"
GENERATED = "highflame-platform-secrets"



def chart(name: str, version: str) -> tuple[str, str]:
    """A chart pin of Highflame's chart folder (the profile's charts.mirror): the charts step fetches it."""
    assert (CHARTS / f"{name}-{version}.tgz").is_file(), f"{name} {version} is not in {CHARTS}"
    return name, version


def service_values(service: str, *, tag: str = "1.0.0", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The service's EKS values template, `${VARS}` filled with harmless placeholders, hosts under DOMAIN."""
    text = (VALUES / f"highflame-{service}-helm-values-tmpl.yml").read_text().replace("example.com", DOMAIN)
    fills = {"DOCKER_IMAGE": f"ghcr.io/highflame-ai/release-highflame-{service}", "IMAGE_TAG": tag}
    text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: fills.get(m.group(1), f"placeholder-{m.group(1).lower()}"), text)
    out = dict(yaml.safe_load(text))
    out.update(extra or {})
    return out


def profile(name: str, kubeconfig: Path, *, stall: int = 60) -> InstallProfile:
    return InstallProfile.model_validate({
        "apiVersion": "hfwizard/v1", "kind": "InstallProfile", "metadata": {"name": name},
        "target": {"namespace": NS, "kubeconfig": str(kubeconfig), "context": "sandbox"},
        "ingress": {"domain": DOMAIN, "className": "alb", "tls": {"enabled": False}},
        "charts": {"mirror": str(CHARTS)},
        "install": {"stallSeconds": stall, "timeoutSeconds": 300, "maxParallel": 4}})


def saved_install(state_root: Path, prof: InstallProfile) -> InstallDir:
    inst = InstallDir.under(state_root, prof.metadata.name).create()
    save_profile(inst.profile_path, prof)
    return inst


def env_secret(release: str, **refs: str) -> SecretSpec:
    """A release's env Secret whose keys come from these references."""
    return SecretSpec(f"{release}-env", f"{release} environment", {k: SecretEntry(ref=v) for k, v in refs.items()})


def generated_secret(name: str, *keys: str) -> SecretSpec:
    return SecretSpec(name, "generated once (test)", {k: SecretEntry(generate=Generate("hex")) for k in keys})


def mounted_secrets(values: list[dict[str, Any]]) -> tuple[SecretSpec, ...]:
    """The Secrets the values' volumes mount (license, keys ...): made here as generated ones, so the
    emulated kubelet can mount them, as the install's prerequisite Secrets would be."""
    names: dict[str, None] = {}
    for vals in values:
        for volume in vals.get("volumes") or []:
            name = (volume.get("secret") or {}).get("secretName")
            if name:
                names.setdefault(name)
    return tuple(generated_secret(name, "value") for name in names)


def plan(services: list[tuple[str, tuple[str, str], dict[str, Any]]], secrets: tuple[SecretSpec, ...] = ()) -> Plan:
    """Charts (fetched from the profile's mirror into the install's cache), namespace, Secrets (a generated
    one and the mounted ones always), then each release after the one before it. A release whose env
    Secret (`<release>-env`) is among `secrets` carries it, as the platform's releases do."""
    generated = generated_secret(GENERATED, "internal-service-secret")
    mounted = mounted_secrets([vals for _, _, vals in services])
    env = {spec.name: spec for spec in secrets}
    pins = tuple(sorted({pin for _, pin, _ in services}))
    # (chart, version, repository): None is the profile's own (its mirror here).
    steps = [Step(CHARTS_STEP, "Charts", StepKind.CHARTS, charts=tuple((*pin, None) for pin in pins)),
             Step("namespace", "Namespace", StepKind.NAMESPACE, (CHARTS_STEP,)),
             Step("secrets", "Secrets", StepKind.SECRETS, ("namespace",), secrets=(generated, *mounted, *secrets))]
    previous = ("secrets",)
    for service, (chart_name, version), vals in services:
        release = f"highflame-{service}"
        spec = ServiceRelease(service, release, chart_name, version, vals, (), "core", env.get(f"{release}-env"))
        steps.append(Step(f"helm/{release}", f"release {release}", StepKind.RELEASE, previous, release=spec))
        previous = (f"helm/{release}",)
    return Plan(NS, tuple(steps))


def run_engine(prof: InstallProfile, inst: InstallDir, the_plan: Plan) -> tuple[int | None, list[Event]]:
    seen: list[Event] = []

    async def go() -> int | None:
        engine = Engine(prof, inst, plan=the_plan, options=EngineOptions(
            kubeconfig=prof.target.kubeconfig, context="sandbox", poll_interval=0.2))
        async for event in engine.run():
            seen.append(event)
        return engine.exit_code

    return asyncio.run(go()), seen


def kube(kubeconfig: Path) -> Kube:
    return Kube(connect(str(kubeconfig), "sandbox"))


def secret_text(k: Kube, name: str, namespace: str = NS) -> dict[str, str]:
    found = k.read_secret(namespace, name) or {}
    return {key: base64.b64decode(v).decode() for key, v in (found.get("data") or {}).items()}


def chart_versions(k: Kube) -> dict[str, tuple[int, str, str]]:
    """release -> (latest revision, its status, its chart version), from Helm's records."""
    from hfwizard.daytwo.status import live_status

    return {r.release: (r.revision, r.helm_status, r.chart_version) for r in live_status(k.api_client, NS).releases}


def set_load_balancer(k: Kube, hostname: str) -> None:
    """What the cloud's ingress controller does: write the load balancer on every Ingress's status."""
    from kubernetes import client

    net = client.NetworkingV1Api(k.api_client)
    for ing in net.list_namespaced_ingress(NS).items:
        net.patch_namespaced_ingress_status(ing.metadata.name, NS, {
            "status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}})


# ---- an upgrade of three services: generic 1.0.2 -> 1.0.3, redteam 1.0.4 -> 1.0.5 -----------------

OLD = {"admin": ("highflame-generic", "1.0.2"), "authn": ("highflame-generic", "1.0.2"),
       "redteam": ("highflame-redteam", "1.0.4")}
NEW = {"admin": ("highflame-generic", "1.0.3"), "authn": ("highflame-generic", "1.0.3"),
       "redteam": ("highflame-redteam", "1.0.5")}
# The guardrails module turned on by the upgrade: the two catalogs (2025.11, 2026.02) have the same
# services, so a release the new version adds is one whose module was off before and is on after.
ADDED = "guard-pii"
NEW_WITH_MODULE = {"admin": NEW["admin"], ADDED: ("highflame-generic", "1.0.3"), "authn": NEW["authn"],
                   "redteam": NEW["redteam"]}
ENV_SERVICES = ("admin", "authn", ADDED)  # the generic services whose env Secret reads DB_ENV
DB_ENV = "HFW_UPGRADE_DB_PASSWORD"  # the env Secrets' reference: its value changes between the versions
FAIL = {"workloadAnnotations": {"sandbox.hfwizard.io/fail": "ImagePullBackOff"}}  # the emulated kubelet fails it
# A Secret hfwizard writes in a namespace of its own, as ClickHouse's Secrets step does.
OWN_NS, OWN_NS_SECRET = "clickhouse", "clickhouse-credentials"


def versioned_plan(charts: dict[str, tuple[str, str]], tag: str, *, failing: str | None = None) -> Plan:
    services = [(svc, chart(name, version), service_values(svc, tag=tag, extra=FAIL if svc == failing else None))
                for svc, (name, version) in charts.items()]
    env = tuple(env_secret(f"highflame-{svc}", DB_PASSWORD=f"env:{DB_ENV}") for svc in ENV_SERVICES if svc in charts)
    base = plan(services, env)
    own = SecretSpec(OWN_NS_SECRET, "in its own namespace (test)", {"password": SecretEntry(ref=f"env:{DB_ENV}")})
    steps = list(base.steps)
    at = base.ids.index("secrets") + 1
    steps[at:at] = [Step(f"namespace/{OWN_NS}", f"Namespace {OWN_NS}", StepKind.NAMESPACE, (CHARTS_STEP,),
                         namespace=OWN_NS),
                    Step(f"secrets/{OWN_NS}", f"Secrets in {OWN_NS}", StepKind.SECRETS, (f"namespace/{OWN_NS}",),
                         secrets=(own,), namespace=OWN_NS)]
    return Plan(base.namespace, tuple(steps))
