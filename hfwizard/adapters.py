"""Adapters from the front ends (TUI, plain prompts) to discovery, preflight and the engine: the one place to rewire.

The screens and plain mode call only these functions. Each imports its module lazily (cloud SDKs, the
Kubernetes client and Helm are slow to import) and turns "not built yet" into NotAvailable, never a fake.
Cloud calls are synchronous: front ends run them in a thread.
"""

from __future__ import annotations

import contextlib
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


@contextlib.asynccontextmanager
async def _cluster(profile: InstallProfile, state_dir: Path) -> AsyncIterator[tuple[str | None, str | None]]:
    """(kubeconfig, context) reaching the profile's cluster while the block runs.

    For the sandbox that is the emulated cluster the rehearsal driver starts (hfwizard.sandbox.rehearsal,
    as `hfwizard sandbox` does) with its objects in the install's state dir, so a preflight, an install
    and a resume in later processes all see one cluster; it stops when the block ends.
    """
    if not profile.is_sandbox:
        yield profile.target.kubeconfig, profile.target.context
        return
    rehearsal = _engine_module("hfwizard.sandbox.rehearsal", "the sandbox rehearsal")
    state_dir.mkdir(parents=True, exist_ok=True)
    async with rehearsal.running_emulator(state_dir) as kubeconfig:
        # Always the emulator's kubeconfig: a rehearsal never reaches for $KUBECONFIG's real cluster.
        yield kubeconfig, rehearsal.CONTEXT


async def run_preflight(profile: InstallProfile, state_dir: Path) -> AsyncIterator[Event]:
    """Check events for `profile` (CheckStarted / CheckFinished ... PreflightFinished).

    The sandbox's checks run against its emulated cluster, started for them; the data services a
    rehearsal has none of come back skipped (hfwizard.preflight decides which), never passed.
    """
    mod = _engine_module("hfwizard.preflight", "preflight")
    async with _cluster(profile, state_dir) as (kubeconfig, context):
        settings = mod.PreflightSettings(kubeconfig=kubeconfig, context=context)
        async for event in mod.run_preflight(profile, settings):
            yield event


class InstallRun:
    """One run of the install of `profile` (a fresh one, or the resume of an unfinished one: the engine
    decides from the journal in `state_dir`).

    `events()` streams the engine's events; InstallFinished is always last. `cancel()` asks the engine to
    stop: the running steps are journalled as interrupted and the run ends with exit code 3, resumable,
    so the caller keeps reading `events()` to the end rather than dropping the stream.
    """

    def __init__(self, profile: InstallProfile, state_dir: Path) -> None:
        self.profile = profile
        self.state_dir = state_dir
        self.exit_code: int | None = None
        self._engine: Any = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self._engine is not None:
            self._engine.cancel()

    async def events(self) -> AsyncIterator[Event]:
        from hfwizard.errors import ExitCode
        from hfwizard.events import InstallFinished

        mod = _engine_module("hfwizard.engine.engine", "the install engine")
        async with _cluster(self.profile, self.state_dir) as (kubeconfig, context):
            if self._cancelled:  # cancelled while the cluster started: nothing was changed
                self.exit_code = int(ExitCode.INTERRUPTED)
                yield InstallFinished("interrupted", self.exit_code, "cancelled before any step started")
                return
            self._engine = mod.Engine(self.profile, self.state_dir,
                                      options=mod.EngineOptions(kubeconfig=kubeconfig, context=context))
            async for event in self._engine.run():
                yield event
            self.exit_code = self._engine.exit_code


def run_install(profile: InstallProfile, state_dir: Path) -> AsyncIterator[Event]:
    """`InstallRun(profile, state_dir).events()`, for a front end that never cancels (plain mode: Ctrl-C
    closes the stream, and the engine still journals the running steps as interrupted)."""
    return InstallRun(profile, state_dir).events()


def install_steps(profile: InstallProfile) -> list[tuple[str, str]]:
    """(step id, title) of the install's plan in order, so a front end can list every step up front."""
    from hfwizard.engine.plan import build_plan

    return [(step.id, step.title) for step in build_plan(profile).steps]


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
