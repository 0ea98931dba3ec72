"""Adapters from the front ends (TUI, plain prompts) to discovery, preflight and the engine: the one place to rewire.

The screens and plain mode call only these functions. Each imports its module lazily (cloud SDKs, the
Kubernetes client and Helm are slow to import) and turns "not built yet" into NotAvailable, never a fake.
Cloud calls are synchronous: front ends run them in a thread.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.errors import NotAvailable

if TYPE_CHECKING:
    from hfwizard.cloud.base import (
        BucketInfo,
        CacheInfo,
        ClusterInfo,
        DatabaseInfo,
        FoundCredential,
        Validation,
    )
    from hfwizard.events import Event
    from hfwizard.profile import InstallProfile

CLOUDS = ("aws", "gcp", "azure")
# Shown beside discovered clusters; the preflight's server-version check is what decides.
MIN_KUBERNETES = (1, 32)


def _provider(cloud: str) -> Any:
    try:
        from hfwizard.cloud.base import provider_for

        return provider_for(cloud)
    except ImportError as exc:
        raise NotAvailable(f"discovery for {cloud} is not available in this build ({exc.name} missing)",
                           remedy="type the values in; preflight checks them") from None


def discover_credentials(cloud: str) -> list[FoundCredential]:
    """Credential sources on this machine for `cloud` (reads files and environment; no network)."""
    return list(_provider(cloud).discover_credentials()) if cloud in CLOUDS else []


def validate_credential(credential: FoundCredential) -> Validation:
    return _provider(credential.cloud.value).validate(credential)


def credential_answers(credential: FoundCredential) -> dict[str, Any]:
    """Profile answers (dotted path -> value) that select `credential`; nothing secret."""
    d = credential.details
    out: dict[str, Any] = {}
    match credential.cloud.value:
        case "aws":
            out["credentials.aws.profile"] = d.get("profile")
            out["credentials.aws.sso"] = credential.kind == "aws-sso" or None
        case "gcp":
            out["credentials.gcp.project"] = d.get("project") or d.get("project_id")
        case "azure":
            out["credentials.azure.subscriptionId"] = d.get("subscription_id") or d.get("subscription")
            out["credentials.azure.tenantId"] = d.get("tenant_id") or d.get("tenant")
    if credential.region:
        out["target.region"] = credential.region
    return {k: v for k, v in out.items() if v is not None}


def credential_for(cloud: str, data: dict[str, Any]) -> FoundCredential | None:
    """The discovered credential the draft's answers point at (else the first one found)."""
    found = discover_credentials(cloud)
    for cred in found:
        answers = credential_answers(cred)
        if answers and all(_get(data, k) == v for k, v in answers.items() if not k.startswith("target.")):
            return cred
    return found[0] if found else None


def list_clusters(cloud: str, data: dict[str, Any]) -> list[ClusterInfo]:
    cred = credential_for(cloud, data)
    if cred is None:
        return []
    return list(_provider(cloud).list_clusters(cred, region=_get(data, "target.region")))


@dataclass(frozen=True)
class DataServices:
    postgres: list[DatabaseInfo]
    redis: list[CacheInfo]
    buckets: list[BucketInfo]
    notes: list[str]


def discover_data_services(cloud: str, data: dict[str, Any]) -> DataServices:
    """PostgreSQL instances, Redis caches and buckets the credential can see; each failure becomes a note."""
    notes: list[str] = []
    pg: list[Any] = []
    rd: list[Any] = []
    bk: list[Any] = []
    cred = credential_for(cloud, data) if cloud in CLOUDS else None
    if cred is None:
        return DataServices([], [], [], [] if cloud not in CLOUDS else ["no credential to search with"])
    provider = _provider(cloud)
    region = _get(data, "target.region")
    for label, call, sink in (("PostgreSQL", lambda: provider.list_postgres(cred, region=region), pg),
                              ("Redis", lambda: provider.list_redis(cred, region=region), rd),
                              ("buckets", lambda: provider.list_buckets(cred), bk)):
        try:
            sink.extend(call())
        except Exception as exc:  # each listing is optional: the operator can type the values
            notes.append(f"{label}: {getattr(exc, 'message', None) or type(exc).__name__}")
    return DataServices(pg, rd, bk, notes)


def kube_contexts(kubeconfig: str | None) -> tuple[list[str], str | None]:
    """The contexts in a kubeconfig and its current one (read as YAML; no Kubernetes client needed)."""
    import os

    from ruamel.yaml import YAML

    path = Path(kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config")
    try:
        doc = YAML(typ="safe", pure=True).load(path.expanduser().read_text("utf-8")) or {}
    except (OSError, ValueError, Exception):
        return [], None
    names = [str(c["name"]) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
    current = doc.get("current-context")
    return names, str(current) if current else None


def sandbox_cluster() -> dict[str, str]:
    """What the sandbox's emulated cluster offers, for the Cluster step."""
    return {"version": "1.32", "nodes": "emulated (no real workloads run)", "where": "this machine, in-process"}


# ---- preflight and install -------------------------------------------------------------------------


def _engine_module(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("hfwizard"):
            raise NotAvailable(f"{what} is not available in this build: {exc.name} has not landed",
                               remedy="export the profile and run `hfwizard install --profile FILE` "
                                      "with a build that has it") from None
        raise


async def run_preflight(profile: InstallProfile) -> AsyncIterator[Event]:
    """Check events for `profile` (CheckStarted / CheckFinished ... PreflightFinished)."""
    mod = _engine_module("hfwizard.preflight", "preflight")
    async for event in mod.run_preflight(profile):
        yield event


async def run_install(profile: InstallProfile, state_dir: Path) -> AsyncIterator[Event]:
    """Step events of installing `profile` with its journal in `state_dir`; an unfinished run resumes.

    Closing the iterator (a cancelled worker, Ctrl-C) cancels the engine, which journals the running
    steps as interrupted: the install stays resumable.
    """
    if profile.is_sandbox:
        # The sandbox needs its emulated cluster started around the engine; that driver lives with the
        # sandbox (hfwizard.sandbox.rehearsal) and the wizard uses it once it exists.
        mod = _engine_module("hfwizard.sandbox.rehearsal", "the sandbox rehearsal")
        events = getattr(mod, "rehearsal_events", None)
        if events is None:
            raise NotAvailable("the sandbox rehearsal in this build offers no event stream to the wizard",
                               remedy="run `hfwizard sandbox` from a shell")
        async for event in events(profile, state_dir):
            yield event
        return
    mod = _engine_module("hfwizard.engine.engine", "the install engine")
    engine = mod.Engine(profile, state_dir, options=mod.EngineOptions(
        kubeconfig=profile.target.kubeconfig, context=profile.target.context))
    async for event in engine.run():
        yield event


def last_installed_profile(install_path: Path) -> InstallProfile | None:
    """The profile of the last finished install in this state directory, if any."""
    from hfwizard.installs import Install

    inst = Install(install_path)
    if inst.state() != "done" or not inst.profile_path.exists():
        return None
    try:
        return inst.load_profile().profile
    except Exception:
        return None


def values_diff(old: InstallProfile | None, new: InstallProfile) -> list[str]:
    """Helm values that change from the last install (every value when there was none)."""
    from hfwizard.profile_io import diff_profiles
    from hfwizard.values import releases

    def flat(profile: InstallProfile | None) -> dict[str, Any]:
        return {r.release: r.values for r in releases(profile)} if profile is not None else {}

    return diff_profiles(flat(old), flat(new))


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
