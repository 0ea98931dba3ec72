"""The one layer every front end calls: target, discovery, preflight, install and resume, export.

The CLI, plain mode and the Textual screens all reach the cluster, the checks and the engine through
these functions, so a choice such as which kubeconfig wins is made once, here. Each imports its
module lazily (cloud SDKs, the Kubernetes client and Helm are slow to import). Cloud calls are
synchronous: front ends run them in a thread. Nothing here prints: front ends render the events.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.cloud import CLOUDS, provider_for
from hfwizard.errors import CheckFailed, ExitCode, HfwizardError
from hfwizard.live import answer_at_fault, answers_https, port_answers, resolves

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
    from hfwizard.preflight import PreflightSettings
    from hfwizard.profile import InstallProfile
    from hfwizard.profile_io import LoadedProfile

__all__ = [
    "CLOUDS",
    "ClusterFit",
    "DataServices",
    "InstallRun",
    "PreflightFirst",
    "Target",
    "answer_at_fault",
    "answers_https",
    "cluster_fit",
    "credential_answers",
    "credential_for",
    "data_service_answers",
    "discover_credentials",
    "discover_data_services",
    "export_profile",
    "install_steps",
    "kube_contexts",
    "last_installed_profile",
    "list_clusters",
    "load",
    "port_answers",
    "preflight",
    "preflight_settings",
    "resolve_target",
    "resolves",
    "sandbox_cluster",
    "sandbox_run",
    "saved_profile",
    "validate_credential",
    "values_diff",
]


# ---- the target cluster ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The kubeconfig and context every command uses to reach the cluster.

    `kubeconfig` None means the Kubernetes client's own default: `$KUBECONFIG`, then ~/.kube/config.
    """

    kubeconfig: str | None = None
    context: str | None = None

    def describe(self) -> str:
        where = f"context {self.context}" if self.context else "the kubeconfig's current context"
        return where + (f" ({self.kubeconfig})" if self.kubeconfig else "")


def resolve_target(profile: InstallProfile, *, kubeconfig: str | Path | None = None,
                   context: str | None = None) -> Target:
    """Which cluster a command talks to, decided once for every command and front end.

    A `--kubeconfig` / `--context` given on the command line wins; then the profile's
    `target.kubeconfig` / `target.context`; then `$KUBECONFIG` and its current context (the client's
    default, left to it). `$KUBECONFIG` never beats a kubeconfig the profile names: the profile is
    what the operator reviewed and saved.
    """
    t = profile.target
    return Target(kubeconfig=str(kubeconfig) if kubeconfig else t.kubeconfig, context=context or t.context)


@contextlib.asynccontextmanager
async def _cluster(profile: InstallProfile, state_dir: Path | None, target: Target) -> AsyncIterator[Target]:
    """The target reachable while the block runs.

    For the sandbox that is the emulated cluster the rehearsal starts, its objects kept in the install's
    state dir, so a preflight, an install and a resume in later processes all see one cluster; it stops
    when the block ends. Without a state dir (a preflight of a sandbox profile file) the profile's own
    kubeconfig is used as given.
    """
    if not profile.is_sandbox or state_dir is None:
        yield target
        return
    from hfwizard.sandbox import rehearsal

    state_dir.mkdir(parents=True, exist_ok=True)
    async with rehearsal.running_emulator(state_dir, profile=profile) as kubeconfig:
        # Always the emulator's kubeconfig: a rehearsal never reaches for $KUBECONFIG's real cluster.
        yield Target(kubeconfig, rehearsal.CONTEXT)


def load(path: Path) -> LoadedProfile:
    """A profile file, validated and migrated (ProfileError, exit 2, when it is not)."""
    from hfwizard.profile_io import load_profile

    return load_profile(path)


# ---- discovery (synchronous: run in a thread) ------------------------------------------------------


def discover_credentials(cloud: str) -> list[FoundCredential]:
    """Credential sources on this machine for `cloud` (reads files and environment; no network)."""
    return list(provider_for(cloud).discover_credentials()) if cloud in CLOUDS else []


def validate_credential(credential: FoundCredential) -> Validation:
    return provider_for(credential.cloud.value).validate(credential)


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
    from hfwizard.draft import get_path  # the draft module (and the store under it): discovery only

    found = discover_credentials(cloud)
    for cred in found:
        answers = credential_answers(cred)
        if answers and all(get_path(data, k) == v for k, v in answers.items() if not k.startswith("target.")):
            return cred
    return found[0] if found else None


def list_clusters(cloud: str, data: dict[str, Any]) -> list[ClusterInfo]:
    from hfwizard.draft import get_path

    cred = credential_for(cloud, data)
    if cred is None:
        return []
    return list(provider_for(cloud).list_clusters(cred, region=get_path(data, "target.region")))


@dataclass(frozen=True)
class DataServices:
    postgres: list[DatabaseInfo]
    redis: list[CacheInfo]
    buckets: list[BucketInfo]
    notes: list[str]


def discover_data_services(cloud: str, data: dict[str, Any]) -> DataServices:
    """PostgreSQL instances, Redis caches and buckets the credential can see; each failure becomes a note."""
    from hfwizard.draft import get_path

    pg: list[Any] = []
    rd: list[Any] = []
    bk: list[Any] = []
    cred = credential_for(cloud, data) if cloud in CLOUDS else None
    if cred is None:
        return DataServices([], [], [], [] if cloud not in CLOUDS else ["no credential to search with"])
    provider = provider_for(cloud)
    region = get_path(data, "target.region")
    notes: list[str] = []
    for label, call, sink in (("PostgreSQL", lambda: provider.list_postgres(cred, region=region), pg),
                              ("Redis", lambda: provider.list_redis(cred, region=region), rd),
                              ("buckets", lambda: provider.list_buckets(cred), bk)):
        try:
            sink.extend(call())
        except Exception as exc:  # each listing is optional: the operator can type the values
            notes.append(f"{label}: {getattr(exc, 'message', None) or type(exc).__name__}")
    return DataServices(pg, rd, bk, notes)


def data_service_answers(kind: str, item: Any, cloud: str) -> dict[str, Any]:
    """Profile answers (dotted path -> value) that point at a discovered "postgres", "redis" or "bucket"."""
    if kind == "postgres":
        return {"postgres.host": item.endpoint, "postgres.port": item.port}
    if kind == "redis":
        return {"redis.endpoints": list(item.endpoints), "redis.tls": item.tls}
    if kind == "bucket":
        return {"clickhouse.backup.bucket": item.name.split("/")[-1],
                "clickhouse.backup.provider": {"aws": "s3", "gcp": "gcs"}.get(cloud, "azure")}
    return {}


def kube_contexts(kubeconfig: str | None) -> tuple[list[str], str | None]:
    """The contexts in a kubeconfig and its current one (read as YAML; no Kubernetes client needed)."""
    import os

    from ruamel.yaml import YAML

    path = Path(kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config")
    try:
        doc = YAML(typ="safe", pure=True).load(path.expanduser().read_text("utf-8")) or {}
    except Exception:  # unreadable or not YAML: no contexts to offer, the field stays free text
        return [], None
    names = [str(c["name"]) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
    current = doc.get("current-context")
    return names, str(current) if current else None


@dataclass(frozen=True)
class ClusterFit:
    """A discovered cluster against the platform's requirements: True meets, False does not, None unknown
    (the cloud did not say; the preflight measures the real nodes)."""

    version: bool | None
    nodes: bool | None
    sizes: bool | None


def _within(value: float | None, lo: float, hi: float | None = None) -> bool | None:
    return None if value is None else value >= lo and (hi is None or value <= hi)


def cluster_fit(cluster: ClusterInfo) -> ClusterFit:
    """How `cluster` measures up to hfwizard.requirements (Kubernetes version, workers, node sizes)."""
    import re

    from hfwizard import requirements as req

    m = re.match(r"^v?(\d+)\.(\d+)", cluster.version or "")
    version = None if not m else (int(m.group(1)), int(m.group(2))) >= req.KUBERNETES.tuple
    sizes: bool | None = True
    for pool in cluster.node_pools:
        ok = _within(pool.cores, *req.WORKER_CORES), _within(pool.memory_gib, *req.WORKER_MEMORY_GIB)
        sizes = None if None in ok and sizes else (sizes and all(ok))
    return ClusterFit(version, _within(cluster.node_count, req.WORKERS_MIN), sizes)


def sandbox_cluster() -> dict[str, str]:
    """What the sandbox's emulated cluster offers, for the Cluster step."""
    from hfwizard.requirements import KUBERNETES

    return {"version": KUBERNETES.text, "nodes": "emulated (no real workloads run)",
            "where": "this machine, in-process"}


# ---- preflight -------------------------------------------------------------------------------------


def preflight_settings(target: Target, *, skip: Sequence[str] = (), timeout: float | None = None,
                       base_dir: Path | None = None, strict_inputs: bool = False,
                       kubeconfig_field: str = "target.kubeconfig") -> PreflightSettings:
    """`strict_inputs`: a path or reference that cannot be used is bad input (exit 2) before any check
    runs (the CLI); without it (the wizard) it shows as the owning check's finding."""
    from hfwizard.preflight import PreflightSettings

    return PreflightSettings(skip=tuple(skip), timeout=timeout, kubeconfig=target.kubeconfig,
                             context=target.context, base_dir=base_dir, strict_inputs=strict_inputs,
                             kubeconfig_field=kubeconfig_field)


async def preflight(profile: InstallProfile, state_dir: Path | None = None, *, target: Target | None = None,
                    skip: Sequence[str] = (), timeout: float | None = None,
                    base_dir: Path | None = None, strict_inputs: bool = False,
                    kubeconfig_field: str = "target.kubeconfig") -> AsyncIterator[Event]:
    """Check events for `profile` (CheckStarted / CheckFinished ... PreflightFinished).

    `target` defaults to `resolve_target(profile)`. The sandbox's checks (given its install's state dir)
    run against its emulated cluster, started for them; the data services a rehearsal has none of come
    back skipped, never passed. A skip entry naming no check raises BadInput before the first event.
    """
    from hfwizard.preflight import run_preflight

    async with _cluster(profile, state_dir, target or resolve_target(profile)) as reached:
        settings = preflight_settings(reached, skip=skip, timeout=timeout, base_dir=base_dir,
                                      strict_inputs=strict_inputs, kubeconfig_field=kubeconfig_field)
        async for event in run_preflight(profile, settings):
            yield event


# ---- install and resume ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreflightFirst:
    """Run the preflight before the engine (a headless install); a failed check stops the run."""

    skip: tuple[str, ...] = ()


class InstallRun:
    """One run of the install of `profile` (a fresh one, or the resume of an unfinished one: the engine
    decides from the journal in `state_dir`).

    `events()` streams the preflight's events (when `preflight_first` is given), then the engine's;
    InstallFinished ends a run that reached the engine. A failed preflight ends the stream early with
    `exit_code` 1 and `refused` saying why; nothing was changed. `cancel()` asks the engine to stop:
    the running steps are journalled as interrupted and the run ends with exit code 3, resumable, so
    the caller keeps reading `events()` to the end rather than dropping the stream.
    """

    def __init__(self, profile: InstallProfile, state_dir: Path, *, target: Target | None = None,
                 preflight_first: PreflightFirst | None = None, rollback_on_failure: bool | None = None,
                 replan: bool = False, secrets_base_dir: Path | None = None, signals: bool = False) -> None:
        self.profile = profile
        self.state_dir = state_dir
        self.target = target or resolve_target(profile)
        self.preflight_first = preflight_first
        self.rollback_on_failure = rollback_on_failure
        self.replan = replan
        self.secrets_base_dir = secrets_base_dir
        self.signals = signals  # SIGINT / SIGTERM interrupt the engine (a process-owning front end)
        self.exit_code: int | None = None
        self.refused: HfwizardError | None = None
        self._engine: Any = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self._engine is not None:
            self._engine.cancel()

    async def events(self) -> AsyncIterator[Event]:
        from hfwizard.events import InstallFinished

        async with _cluster(self.profile, self.state_dir, self.target) as reached:
            if self.preflight_first is not None:
                async for event in self._preflight(reached):
                    yield event
                if self.refused is not None:
                    return
            if self._cancelled:  # cancelled while the cluster started: nothing was changed
                self.exit_code = int(ExitCode.INTERRUPTED)
                yield InstallFinished("interrupted", self.exit_code, "cancelled before any step started")
                return
            async for event in self._engine_events(reached):
                yield event

    async def _preflight(self, reached: Target) -> AsyncIterator[Event]:
        from hfwizard.events import CheckFinished
        from hfwizard.preflight import run_preflight

        assert self.preflight_first is not None
        settings = preflight_settings(reached, skip=self.preflight_first.skip, base_dir=self.secrets_base_dir)
        failed: list[str] = []
        async for event in run_preflight(self.profile, settings):
            yield event
            if isinstance(event, CheckFinished) and event.result.status.value == "fail":
                failed.append(event.result.id)
        if failed:
            self.refused = CheckFailed(f"preflight failed: {', '.join(failed)}; nothing was changed",
                                       remedy="fix what the checks say, or skip one with --skip-check ID")
            self.exit_code = int(self.refused.exit_code)

    def _make_engine(self, reached: Target) -> Any:
        from hfwizard.engine.engine import Engine, EngineOptions

        return Engine(self.profile, self.state_dir, options=EngineOptions(
            kubeconfig=reached.kubeconfig, context=reached.context, rollback_on_failure=self.rollback_on_failure,
            replan=self.replan, secrets_base_dir=self.secrets_base_dir))

    async def _engine_events(self, reached: Target) -> AsyncIterator[Event]:
        from hfwizard.engine.engine import install_signal_handlers

        self._engine = self._make_engine(reached)
        undo = install_signal_handlers(self._engine) if self.signals else None
        try:
            async for event in self._engine.run():
                yield event
        finally:
            if undo is not None:
                undo()
        code = self._engine.exit_code
        self.exit_code = int(code) if code is not None else int(ExitCode.FAILED)


def sandbox_run(state_root: Path, *, profile: InstallProfile | None = None, state_dir: Path | None = None,
                signals: bool = False, rehearse: InstallProfile | None = None, charts: Path | None = None,
                secrets_base_dir: Path | None = None, replan: bool = False) -> InstallRun:
    """The sandbox rehearsal (a new one, or the resume of `state_dir`'s) as an InstallRun, preflight first.

    A new rehearsal is the install named "sandbox", from `rehearse` (the operator's own profile, its cloud
    played by the emulator) or the bundled sandbox profile; `charts` is a mirror folder to install from.
    `replan` carries on with a changed profile, as `resume --replan` does for a real cluster.
    """
    from hfwizard.installs import PROFILE_FILE
    from hfwizard.profile_io import save_profile
    from hfwizard.sandbox.rehearsal import sandbox_profile
    from hfwizard.state import install_dir

    idir = state_dir or install_dir(state_root, "sandbox")
    if profile is None:
        profile = sandbox_profile(idir, rehearse, charts)
        save_profile(idir / PROFILE_FILE, profile)
    elif charts is not None:
        profile = sandbox_profile(idir, profile, charts)
    return InstallRun(profile, idir, preflight_first=PreflightFirst(), signals=signals,
                      secrets_base_dir=secrets_base_dir, replan=replan)


def pending_changes(profile: InstallProfile, state_dir: Path) -> list[str]:
    """What `profile` changes against the unfinished install in `state_dir` (empty: nothing to replan).

    The engine refuses such a run unless it is told to replan; a front end shows these lines and asks
    first ("Retry with changes"), then runs `InstallRun(..., replan=True)`, as `resume --replan` does.
    """
    from hfwizard.profile_io import diff_profiles, profile_data, profile_hash
    from hfwizard.store.install_dir import InstallDir
    from hfwizard.store.status import InstallStatus

    previous = InstallDir(state_dir).read_journal()
    if previous.runs == 0 or previous.status is InstallStatus.OK or previous.profile_hash == profile_hash(profile):
        return []
    return diff_profiles(previous.profile or {}, profile_data(profile)) or ["(the saved answers differ)"]


def is_debug(event: Event) -> bool:
    """A log line only a debugging operator wants (Helm's DEBUG chatter): hidden by default everywhere."""
    from hfwizard.events import LogLine

    return isinstance(event, LogLine) and (event.level == "debug" or event.line.lstrip().startswith("DEBUG"))


def install_steps(profile: InstallProfile) -> list[tuple[str, str]]:
    """(step id, title) of the install's plan in order, so a front end can list every step up front."""
    from hfwizard.engine.plan import build_plan

    return [(step.id, step.title) for step in build_plan(profile).steps]


# ---- saved installs and export ---------------------------------------------------------------------


def last_installed_profile(install_path: Path) -> InstallProfile | None:
    """The profile of the last finished install in this state directory, if any."""
    from hfwizard.installs import Install

    inst = Install(install_path)
    if inst.state() != "done" or not inst.profile_path.exists():
        return None
    try:
        return inst.load_profile().profile
    except Exception:  # an unreadable old profile only means there is nothing to compare with
        return None


def values_diff(old: InstallProfile | None, new: InstallProfile) -> list[str]:
    """Helm values that change from the last install (every value when there was none)."""
    from hfwizard.engine.plan import values_profile
    from hfwizard.platform.values import service_releases
    from hfwizard.profile_io import diff_profiles

    def flat(profile: InstallProfile | None) -> dict[str, Any]:
        return {r.release: r.values for r in service_releases(values_profile(profile))} if profile else {}

    return diff_profiles(flat(old), flat(new))


def saved_profile(state_root: Path, name: str | None = None) -> LoadedProfile:
    """The profile a saved install used (`name`, or the only one under `state_root`)."""
    from hfwizard.installs import find_install

    return find_install(state_root, name).load_profile()


def export_profile(loaded: LoadedProfile, out: Path | None = None) -> str | Path:
    """`loaded` as a profile with secret references only (migrated, normalised, comments kept): written
    to `out` (returns the path), else returned as YAML text."""
    from hfwizard.profile_io import dump_profile, save_profile

    if out is None:
        return dump_profile(loaded.profile, loaded.document)
    return save_profile(out, loaded.profile, loaded.document)


# ---- day two: status, DNS hand-off, support bundle, uninstall, upgrade -----------------------------

__all__ += ["NAMESERVERS_ENV", "StatusReport", "after_install_dns", "dns_handoff", "nameservers",
            "platform_status", "support_bundle", "uninstall_run", "upgrade_changes", "upgrade_run"]

NAMESERVERS_ENV = "HFWIZARD_NAMESERVERS"  # "IP[:PORT],..." asked instead of the machine's resolver


def nameservers(given: Sequence[str] = ()) -> list[str] | None:
    import os

    found = list(given) or [s.strip() for s in os.environ.get(NAMESERVERS_ENV, "").split(",") if s.strip()]
    return found or None


@dataclass
class StatusReport:
    """`hfwizard status NAME`: the platform live from the cluster, and the DNS hand-off."""

    status: Any  # hfwizard.daytwo.status.PlatformStatus
    dns: list[str]
    dns_checks: list[Any]  # hfwizard.daytwo.dns.RecordCheck

    def to_json(self) -> dict[str, Any]:
        return {**self.status.to_json(), "dns": [
            {"record": c.record.line, "status": str(c.status), "found": list(c.found), "detail": c.detail}
            for c in self.dns_checks]}


def dns_handoff(profile: InstallProfile, hosts: Sequence[str], lb: Sequence[str], *,
                servers: Sequence[str] | None = None, check: bool = True) -> tuple[list[str], list[Any]]:
    """The DNS records to create (each host -> the load balancer) and, with `check`, what DNS says now."""
    from hfwizard.daytwo import dns

    domain = profile.ingress.domain
    if not profile.ingress.enabled or (not hosts and not domain):
        return [], []
    hosts = list(hosts) or dns.platform_hosts(domain or "")
    if not lb:
        return ["DNS: the load balancer has no address yet; `hfwizard status "
                f"{profile.metadata.name}` shows the records once it has one"], []
    records = dns.dns_records(hosts, list(lb))
    checks = dns.check_records(records, servers) if check else None
    return dns.handoff_lines(records, checks), list(checks or [])


async def platform_status(install: Path, *, target: Target | None = None, servers: Sequence[str] | None = None,
                          check_dns: bool = True, profile: InstallProfile | None = None) -> StatusReport:
    """The saved install's platform as the cluster shows it now (see hfwizard.daytwo.status); `profile`:
    the install's, when the caller has loaded it already."""
    import asyncio

    from hfwizard.daytwo.reach import reach, reach_static
    from hfwizard.daytwo.status import live_status
    from hfwizard.store.install_dir import InstallDir

    profile = profile or InstallDir(install).load_profile().profile
    async with _cluster(profile, install, target or resolve_target(profile)) as reached:
        # Static credentials: plain HTTPS, without the kubernetes client's 0.5 s import. Either way the API
        # is asked once first: BadInput / Failed naming the kubeconfig or server and what to do.
        api = (await reach_static(reached.kubeconfig, reached.context)
               or await reach(reached.kubeconfig, reached.context))
        st = await asyncio.to_thread(live_status, api, profile.target.namespace)
    lines, checks = await asyncio.to_thread(dns_handoff, profile, st.hosts, st.load_balancer, servers=servers,
                                            check=check_dns)
    return StatusReport(st, lines, checks)


async def after_install_dns(install: Path, *, target: Target | None = None,
                            servers: Sequence[str] | None = None) -> list[str]:
    """The DNS hand-off printed after an install; never fails the install it follows."""
    try:
        report = await platform_status(install, target=target, servers=servers)
    except Exception as exc:
        return [f"DNS: the load balancer could not be read ({type(exc).__name__}); "
                "`hfwizard status NAME` shows the records later"]
    return report.dns


async def support_bundle(install: Path, *, target: Target | None = None, reason: str = "",
                         out: Path | None = None, after_failure: bool = False) -> tuple[Path | None, str]:
    """Write the install's support bundle (secrets masked); returns its path and a line to print.
    When the cluster cannot be reached (or its kubeconfig used) the bundle holds the install's own
    files and the error is raised after it is written, naming its path and what to do.
    `after_failure`: never raises, so the failure it follows stays the one reported."""
    import asyncio

    from hfwizard.daytwo import support
    from hfwizard.daytwo.reach import reach
    from hfwizard.store.install_dir import InstallDir

    loaded = InstallDir(install).load_profile()
    profile = loaded.profile
    kwargs: dict[str, Any] = {"profile_document": loaded.document, "namespace": profile.target.namespace,
                              "reason": reason, "out_path": out}
    unreached: HfwizardError | None = None
    try:
        async with _cluster(profile, install, target or resolve_target(profile)) as reached:
            try:
                kwargs["api_client"] = await reach(reached.kubeconfig, reached.context)
            except HfwizardError as exc:
                unreached, kwargs["cluster_error"] = exc, exc.message
            if after_failure:
                return await asyncio.to_thread(lambda: support.support_bundle_after_failure(install, **kwargs))
            report = await asyncio.to_thread(lambda: support.support_bundle(install, **kwargs))
    except HfwizardError:
        if after_failure:
            return None, "no support bundle: the cluster could not be reached"
        raise
    if unreached is not None:
        raise type(unreached)(f"{unreached.message}; the support bundle {report.path} holds the install's own files "
                              "only", remedy=f"{unreached.remedy}; then run `hfwizard support-bundle "
                              f"{profile.metadata.name}` again for the cluster's part")
    missing = [r.name for r in report.failed]
    return report.path, f"support bundle: {report.path}" + (f" ({', '.join(missing)} not collected)" if missing else "")


def uninstall_run(install: Path, *, delete_data: bool, target: Target | None = None,
                  signals: bool = False) -> InstallRun:
    """`hfwizard uninstall NAME` as a run (see hfwizard.daytwo.runs.uninstall_run)."""
    from hfwizard.daytwo import runs

    return runs.uninstall_run(install, delete_data=delete_data, target=target, signals=signals)


def upgrade_run(profile: InstallProfile, install: Path, plan: Any, *, rollback_on_failure: bool = False,
                target: Target | None = None, signals: bool = False,
                secrets_base_dir: Path | None = None) -> Any:
    """`hfwizard upgrade NAME` as a run: an `hfwizard.daytwo.runs.UpgradeRun` (`.rolled_back` after it)."""
    from hfwizard.daytwo.runs import UpgradeRun

    return UpgradeRun(profile, install, plan, rollback_on_failure=rollback_on_failure, target=target,
                      signals=signals, secrets_base_dir=secrets_base_dir)


def upgrade_changes(install: Path, profile: InstallProfile, plan: Any, *, target: Target | None = None,
                    secrets_base_dir: Path | None = None) -> list[str]:
    """What the upgrade to `profile` changes, per release and per Secret (see hfwizard.daytwo.runs)."""
    from hfwizard.daytwo import runs

    return runs.upgrade_changes(install, profile, plan, target=target, secrets_base_dir=secrets_base_dir)
