"""The preflight: every check a profile needs, run concurrently, each bounded, streamed as typed events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.errors import BadInput, SecretError
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished
from hfwizard.profile import Cloud, InstallProfile

if TYPE_CHECKING:
    from hfwizard.checks.cloud import CloudAccess
    from hfwizard.checks.kubernetes import KubeTarget
    from hfwizard.checks.outbound import Destination
    from hfwizard.cloud.aws import AwsOptions
    from hfwizard.cloud.azure import AzureOptions
    from hfwizard.cloud.gcp import GcpOptions

log = logging.getLogger("hfwizard.preflight")

SANDBOX_REASON = "sandbox: rehearsal, not checked"
# Data services a sandbox rehearsal has none of: their checks are skipped there, never shown as passed.
SANDBOX_SKIPPED = ("postgres/", "redis/", "clerk/api", "blob/", "cloud/", "outbound/")


@dataclass(frozen=True)
class PreflightSettings:
    """How to run the preflight beyond what the profile says (command-line options, the TUI's choices)."""

    skip: tuple[str, ...] = ()  # check ids (or a group: "postgres" skips postgres/*) to skip
    timeout: float | None = None  # default per-check timeout; None: profile.preflight.timeoutSeconds
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per check id
    kubeconfig: str | None = None  # overrides target.kubeconfig
    context: str | None = None  # overrides target.context
    base_dir: Path | None = None  # where relative file: references are resolved (the profile's folder)
    ca_file: str | None = None  # a CA bundle for the HTTPS checks (TLS-inspecting proxy); else the system's
    # Where each cloud's calls go (private endpoints, a CA bundle; the tests' loopback stand-ins). None:
    # the public endpoints. The profile's own fields (region, project, endpointUrl, authorityHost...)
    # are laid over these; for GCP and Azure, ca_file above stands in for a missing ca_bundle.
    aws: AwsOptions | None = None
    gcp: GcpOptions | None = None
    azure: AzureOptions | None = None
    # The command line's preflight: a kubeconfig, CA file or secret reference that cannot be used is
    # bad input (exit 2) before any check runs; the TUI instead shows it as the owning check's finding.
    strict_inputs: bool = False
    kubeconfig_field: str = "target.kubeconfig"  # what to call the kubeconfig in messages


@dataclass(frozen=True)
class PreflightPlan:
    """The checks in display order, and which of them will be skipped and why."""

    checks: list[Check]
    skipped: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.checks]


def _matches(check_id: str, pattern: str) -> bool:
    pattern = pattern.strip().rstrip("/")
    return check_id == pattern or check_id.startswith(pattern + "/")


def plan_preflight(profile: InstallProfile, settings: PreflightSettings | None = None) -> PreflightPlan:
    """Build the checks for `profile`. Raises BadInput when a skip entry names no check (a typo would
    otherwise silently run what the operator meant to skip)."""
    settings = settings or PreflightSettings()
    checks = build_checks(profile, settings)
    skipped: dict[str, str] = {}
    if profile.target.cloud is Cloud.SANDBOX:
        for c in checks:
            if any(_matches(c.id, p) or c.id.startswith(p) for p in SANDBOX_SKIPPED):
                skipped[c.id] = SANDBOX_REASON
    for source, entries in (("preflight.skip in the profile", profile.preflight.skip),
                            ("--skip-check", settings.skip)):
        for entry in entries:
            hits = [c.id for c in checks if _matches(c.id, entry)]
            if not hits:
                raise BadInput(f"{source}: {entry!r} names no check",
                               remedy="check ids: " + ", ".join(c.id for c in checks))
            for cid in hits:
                skipped.setdefault(cid, f"skipped by {source}")
    if settings.strict_inputs and not profile.is_sandbox:
        _check_inputs(profile, settings, checks, skipped)
    return PreflightPlan(checks, skipped)


# Which check group reads the references under a profile section (a skipped group's are not resolved).
_REFERENCE_GROUPS = {"postgres": "postgres", "redis": "redis", "clerk": "clerk", "credentials": "cloud"}


def _check_inputs(profile: InstallProfile, settings: PreflightSettings, checks: list[Check],
                  skipped: Mapping[str, str]) -> None:
    from hfwizard.validate import check_inputs

    def group_skipped(group: str) -> bool:
        ids = [c.id for c in checks if c.id.startswith(group + "/")]
        return bool(ids) and all(i in skipped for i in ids)

    skip = tuple(section for section, group in _REFERENCE_GROUPS.items() if group_skipped(group))
    check_inputs(profile, base_dir=settings.base_dir, kubeconfig=settings.kubeconfig or profile.target.kubeconfig,
                 kubeconfig_field=settings.kubeconfig_field, ca_file=settings.ca_file, skip_references=skip)


def build_checks(profile: InstallProfile, settings: PreflightSettings) -> list[Check]:
    """Every check for the profile, in display order; nothing runs and no secret is read here."""
    from hfwizard.checks.blob import bucket_check
    from hfwizard.checks.clerk import clerk_checks
    from hfwizard.checks.cloud import identity_check
    from hfwizard.checks.database import postgres_size_check
    from hfwizard.checks.helm import helm_check
    from hfwizard.checks.inputs import platform_inputs_check, secret_getter
    from hfwizard.checks.kubernetes import KubeTarget, kubernetes_checks, read_cluster_secret
    from hfwizard.checks.outbound import (
        clerk_api_destination,
        clerk_frontend_destination,
        outbound_checks,
        registry_destination,
    )
    from hfwizard.profile import clerk_frontend_host

    default = settings.timeout or profile.preflight.timeout_seconds

    def timeout_for(check_id: str) -> float:
        return float(settings.timeouts.get(check_id, default))

    t = profile.target
    kube = KubeTarget(
        kubeconfig=settings.kubeconfig or t.kubeconfig, context=settings.context or t.context,
        namespace=t.namespace, ingress_enabled=profile.ingress.enabled,
        ingress_class=profile.ingress.class_name,
        storage_class=profile.clickhouse.storage_class, request_timeout=max(default * 0.8, 0.5))

    def read_k8s(name: str, key: str) -> str:
        return read_cluster_secret(kube, name, key)

    def getter(ref: str | None) -> Callable[[], Awaitable[str | None]]:
        return secret_getter(ref, base_dir=settings.base_dir, read_k8s=read_k8s)

    checks: list[Check] = [replace(c, timeout_s=timeout_for(c.id)) for c in kubernetes_checks(kube, profile=profile)]
    checks.append(platform_inputs_check(profile, timeout_for("platform/inputs")))
    checks.append(helm_check(profile.install.helm.value, profile.install.helm_binary,
                             timeout_for("helm/engine")))
    checks += _postgres(profile, settings, getter, default)
    access, why_not = _cloud_access(profile, getter, default, settings, cloud_for_backup=False)
    checks.append(postgres_size_check(access, profile.postgres.host, profile.sizing.postgres.vcpu,
                                      profile.sizing.postgres.memory_gib, timeout_for("postgres/size"), why_not))
    checks += _redis(profile, settings, getter, default)

    clerk = profile.clerk
    checks += clerk_checks(clerk.publishable_key, clerk.api_url, getter(clerk.secret_key),
                           secret_ref=clerk.secret_key, ca_file=settings.ca_file, timeout_for=timeout_for,
                           secret_optional=profile.is_sandbox)

    backup = profile.clickhouse.backup
    from hfwizard.checks.blob import cloud_of

    bucket_access, bucket_why = _cloud_access(profile, getter, default, settings, cloud_for_backup=True)
    if bucket_access is not None and bucket_access.cloud != cloud_of(backup.provider.value):
        bucket_access = None
    checks.append(bucket_check(bucket_access, backup.bucket, backup.provider.value,
                               timeout_for("blob/backup-bucket"), account=backup.account, why_not=bucket_why))
    if backup.provider.value == "s3" and backup.role_arn:
        from hfwizard.checks.backup_identity import CHECK_ID, identity_write_check
        from hfwizard.platform.clickhouse import SERVICE_ACCOUNT

        # The same AWS login the bucket check uses asks IAM whether the pods' role may write there.
        checks.append(identity_write_check(bucket_access, backup.role_arn, backup.bucket, backup.prefix,
                                           profile.target.namespace, SERVICE_ACCOUNT, timeout_for(CHECK_ID)))
    checks.append(identity_check(access, timeout_for("cloud/identity"), why_not))

    destinations = [registry_destination(profile.preflight.registry_url)]
    pk_host = None
    if clerk.publishable_key:
        with contextlib.suppress(ValueError):
            pk_host = clerk_frontend_host(clerk.publishable_key)
    destinations.append(clerk_frontend_destination(pk_host or "clerk-frontend.invalid"))
    destinations.append(clerk_api_destination(clerk.api_url))
    outbound = outbound_checks(destinations, ca_file=settings.ca_file, timeout_for=timeout_for)
    if pk_host is None:
        outbound[1] = _fixed(outbound[1], Status.SKIPPED, "not checked: no usable clerk.publishableKey "
                             "names the frontend host (see clerk/keys)")
    return [*checks, *outbound, *_cluster_outbound(profile, settings, kube, destinations, pk_host, timeout_for)]


def _cluster_outbound(profile: InstallProfile, settings: PreflightSettings, kube: KubeTarget,
                      local: list[Destination], pk_host: str | None,
                      timeout_for: Callable[[str], float]) -> list[Check]:
    """The same destinations tried from a probe pod inside the cluster, when the operator allows it;
    the registry is the one the nodes pull from (images.mirror when set)."""
    from hfwizard.checks import cluster_outbound as co
    from hfwizard.checks.outbound import registry_destination

    images = profile.images
    registry = registry_destination(f"https://{images.mirror.split('/')[0] if images.mirror else images.registry}")
    wanted = [co.cluster_destination(d) for d in [registry, *local[1:]]]
    image = profile.preflight.probe_image or (f"{images.mirror}/{co.PROBE_IMAGE}" if images.mirror
                                               else co.PROBE_IMAGE)

    def probe_timeout(check_id: str) -> float:
        # A pod is scheduled and its image pulled first: the per-check default is too short for that.
        return float(settings.timeouts[check_id]) if check_id in settings.timeouts \
            else max(timeout_for(check_id), co.MIN_TIMEOUT)

    checks = co.cluster_outbound_checks(kube, wanted, image=image, timeout_for=probe_timeout)
    if not profile.preflight.cluster_outbound:
        return [_fixed(c, Status.SKIPPED, co.NOT_ALLOWED) for c in checks]
    if pk_host is None:
        checks[1] = _fixed(checks[1], Status.SKIPPED, "not checked: no usable clerk.publishableKey names the "
                           "frontend host (see clerk/keys)")
    return checks


def _fixed(check: Check, status: Status, finding: str, remedy: str | None = None) -> Check:
    """A check whose verdict is known without running anything."""
    async def run() -> CheckResult:
        return result(check.id, check.title, status, finding, remedy)
    return replace(check, run=run)


def _with_secret(checks: list[Check], get: Callable[[], Awaitable[str | None]], field_name: str,
                 build: Callable[[str], list[Check]], owner: str) -> list[Check]:
    """Checks built from a resolved secret. The secret is resolved inside the first check that runs
    (bounded by its timeout). When it does not resolve, `owner` fails naming the reference, the checks
    after it (which need the login) are skipped pointing at it, and the rest run without a password."""
    memo: dict[str, asyncio.Future[tuple[dict[str, Check], SecretError | None]]] = {}
    ids = [c.id for c in checks]
    needs = set(ids[ids.index(owner) + 1:]) if owner in ids else set()

    async def resolved() -> tuple[dict[str, Check], SecretError | None]:
        try:
            value, err = (await get()) or "", None
        except SecretError as exc:
            value, err = "", exc
        return {c.id: c for c in build(value)}, err

    def wrap(check: Check) -> Check:
        async def run() -> CheckResult:
            started = time.monotonic()
            if "f" not in memo:
                memo["f"] = asyncio.ensure_future(resolved())
            built, err = await asyncio.shield(memo["f"])
            if err is not None and check.id == owner:
                return result(check.id, check.title, Status.FAIL, f"{field_name}: {err.message}",
                              err.remedy or "fix the reference", started)
            if err is not None and check.id in needs:
                return result(check.id, check.title, Status.SKIPPED,
                              f"not checked: {field_name} does not resolve (see {owner})", None, started)
            got = await built[check.id].run()
            # Timed from this check's own start: the wait for the secret is part of what it took.
            return replace(got, duration_s=round(time.monotonic() - started, 3))
        return replace(check, run=run)

    return [wrap(c) for c in checks]


def _postgres(profile: InstallProfile, settings: PreflightSettings,
              getter: Callable[[str | None], Callable[[], Awaitable[str | None]]],
              default: float) -> list[Check]:
    from hfwizard.checks.postgres import PostgresSpec, postgres_checks

    pg = profile.postgres

    def build(password: str) -> list[Check]:
        spec = PostgresSpec(host=pg.host or "", port=pg.port, database=pg.database, user=pg.user,
                            password=password, sslmode=pg.sslmode.value, sslrootcert=pg.ca_cert,
                            min_version=pg.min_version, timeout_s=default,
                            databases_from=lambda: _service_databases(profile))
        return [_timed(c, settings) for c in postgres_checks(spec)]

    shapes = build("")
    if not pg.host:
        return _missing(shapes, "postgres.host is not set",
                        "give the PostgreSQL endpoint (RDS, Cloud SQL, Azure Database) in postgres.host")
    return _with_secret(shapes, getter(pg.password), "postgres.password", build, owner="postgres/auth")


def _service_databases(profile: InstallProfile) -> tuple[str, ...]:
    """The databases the enabled services use; none when the catalog cannot plan the profile yet (the
    platform/inputs check names what is missing)."""
    from hfwizard.errors import HfwizardError
    from hfwizard.platform.values import databases

    try:
        return tuple(databases(profile))
    except (HfwizardError, ValueError, KeyError):
        return ()


def _redis(profile: InstallProfile, settings: PreflightSettings,
           getter: Callable[[str | None], Callable[[], Awaitable[str | None]]],
           default: float) -> list[Check]:
    from hfwizard.checks.redis import RedisSpec, redis_checks

    rd = profile.redis

    def build(password: str) -> list[Check]:
        spec = RedisSpec(endpoints=list(rd.endpoints) or ["unset:6379"], tls=rd.tls, ca_file=rd.ca_cert,
                         username=rd.username, password=password, min_version=rd.min_version,
                         min_memory_bytes=int(profile.sizing.redis.memory_gib_per_node * 2**30),
                         timeout_s=default)
        return [_timed(c, settings) for c in redis_checks(spec)]

    shapes = build("")
    if not rd.endpoints:
        return _missing(shapes, "redis.endpoints is empty",
                        "give the Redis cluster's configuration endpoint (host:port) in redis.endpoints")
    return _with_secret(shapes, getter(rd.password), "redis.password", build, owner="redis/auth")


def _timed(check: Check, settings: PreflightSettings) -> Check:
    # The PostgreSQL and Redis checks share one probe and budget their own timeouts as multiples of
    # the per-operation timeout; an explicit per-check timeout still wins.
    if check.id in settings.timeouts:
        return replace(check, timeout_s=float(settings.timeouts[check.id]))
    return check


def _missing(checks: list[Check], finding: str, remedy: str) -> list[Check]:
    first, rest = checks[0], checks[1:]
    return [_fixed(first, Status.FAIL, finding, remedy),
            *(_fixed(c, Status.SKIPPED, f"not checked: {finding} (see {first.id})") for c in rest)]


def _cloud_access(profile: InstallProfile, getter: Callable[[str | None], Callable[[],
                                                                                   Awaitable[str | None]]],
                  default: float, settings: PreflightSettings, *, cloud_for_backup: bool,
                  ) -> tuple[CloudAccess | None, str]:
    """Which cloud account to check, from the profile: the target cloud, or (for the bucket, or for an
    existing cluster) the cloud the backup bucket lives in."""
    from hfwizard.checks.blob import cloud_of
    from hfwizard.checks.cloud import CloudAccess

    creds = profile.credentials
    cloud = profile.target.cloud.value
    if cloud_for_backup or cloud not in ("aws", "gcp", "azure"):
        backup_cloud = cloud_of(profile.clickhouse.backup.provider.value)
        if cloud_for_backup and backup_cloud != cloud and getattr(creds, backup_cloud) is None:
            # The operator's own login (environment, default profile) is not what ClickHouse will
            # use on an existing cluster or another cloud: checking with it would prove nothing.
            return None, (f"target.cloud is {cloud} and the profile has no credentials.{backup_cloud} for the "
                          f"{profile.clickhouse.backup.provider.value} bucket")
        if cloud_for_backup or getattr(creds, backup_cloud) is not None:
            cloud = backup_cloud
    if cloud not in ("aws", "gcp", "azure"):
        return None, f"target.cloud is {cloud} and the profile names no cloud credentials"
    timeout = max(default * 0.8, 0.5)
    region = profile.target.region or profile.clickhouse.backup.region
    if cloud == "aws":
        aws = creds.aws
        return CloudAccess("aws", region=region, timeout_s=timeout, options=settings.aws,
                           aws_profile=aws.profile if aws else None,
                           aws_endpoint_url=aws.endpoint_url if aws else None,
                           aws_access_key_id=getter(aws.access_key_id) if aws and aws.access_key_id else None,
                           aws_secret_access_key=getter(aws.secret_access_key)
                           if aws and aws.secret_access_key else None), ""
    if cloud == "gcp":
        gcp = creds.gcp
        key = gcp.service_account_key if gcp else None
        key_file = key.removeprefix("file:") if key and key.startswith("file:") else None
        if key_file and settings.base_dir is not None and not Path(key_file).expanduser().is_absolute():
            key_file = str(settings.base_dir / key_file)  # relative to the profile, as file: references are
        return CloudAccess("gcp", region=region, timeout_s=timeout, options=_with_ca(settings.gcp, "gcp", settings),
                           gcp_project=gcp.project if gcp else None, gcp_key_file=key_file, gcp_key_ref=key), ""
    az = creds.azure
    return CloudAccess("azure", region=region, timeout_s=timeout,
                       options=_with_ca(settings.azure, "azure", settings),
                       azure_subscription=az.subscription_id if az else None,
                       azure_tenant=az.tenant_id if az else None,
                       azure_client_id=az.client_id if az else None,
                       azure_client_secret=getter(az.client_secret) if az and az.client_secret else None,
                       azure_secret_ref=az.client_secret if az else None,
                       azure_authority_host=az.authority_host if az else None,
                       azure_management_endpoint=az.management_endpoint if az else None), ""


def _with_ca(options: GcpOptions | AzureOptions | None, cloud: str,
             settings: PreflightSettings) -> GcpOptions | AzureOptions | None:
    """The cloud's options with the preflight's CA bundle when they name none: a TLS-inspecting proxy
    re-signs the cloud APIs' traffic as it does the registry's."""
    if settings.ca_file is None or (options is not None and options.ca_bundle):
        return options
    if options is None:
        from hfwizard.cloud.azure import AzureOptions
        from hfwizard.cloud.gcp import GcpOptions

        options = GcpOptions() if cloud == "gcp" else AzureOptions()
    return replace(options, ca_bundle=settings.ca_file)


# ---- running -------------------------------------------------------------------------------------


async def run_check(check: Check) -> CheckResult:
    """Run one check inside its timeout. It never raises: a crash or a timeout is a FAIL finding."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(check.timeout_s):
            got = await check.run()
    except TimeoutError:
        return result(check.id, check.title, Status.FAIL, f"no answer within {check.timeout_s:g} s",
                      "check the network path to it; raise the timeout with --timeout or "
                      "preflight.timeoutSeconds if it is just slow", started)
    except Exception as exc:
        # Only the exception's type: its text may quote a connection string or a header.
        log.debug("check %s raised", check.id, exc_info=True)
        return result(check.id, check.title, Status.FAIL, f"the check itself failed ({type(exc).__name__})",
                      "this is a bug in hfwizard: please report it with the log", started)
    if not isinstance(got, CheckResult):
        return result(check.id, check.title, Status.FAIL, "the check returned no result",
                      "this is a bug in hfwizard: please report it", started)
    if got.id != check.id or got.duration_s == 0.0:
        got = replace(got, id=check.id, duration_s=got.duration_s or round(time.monotonic() - started, 3))
    return got


async def run_checks(checks: Sequence[Check],
                     skipped: Mapping[str, str] | None = None) -> AsyncGenerator[Event, None]:
    """Start every check at once; yield CheckStarted for each, CheckFinished as each ends (skipped
    ones first, finished at once), then PreflightFinished. Closing the iterator early cancels the rest."""
    skipped = skipped or {}
    counts = dict.fromkeys(Status, 0)
    for c in checks:
        if c.id in skipped:
            counts[Status.SKIPPED] += 1
            yield CheckFinished(result(c.id, c.title, Status.SKIPPED, skipped[c.id]))
    running = [c for c in checks if c.id not in skipped]
    tasks = [asyncio.ensure_future(run_check(c)) for c in running]
    try:
        # One loop turn first: every check takes its first step (opens its socket, sends its request)
        # before the front end spends time showing the started events.
        await asyncio.sleep(0)
        for c in running:
            yield CheckStarted(c.id, c.title)
        for next_done in asyncio.as_completed(tasks):
            got = await next_done
            counts[got.status] += 1
            yield CheckFinished(got)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    yield PreflightFinished(counts[Status.PASS], counts[Status.WARN], counts[Status.FAIL],
                            counts[Status.SKIPPED])


async def run_preflight(profile: InstallProfile,
                        settings: PreflightSettings | None = None) -> AsyncGenerator[Event, None]:
    """The preflight for `profile` as an event stream (see run_checks). Raises BadInput before the first
    event when the skip list names no check."""
    plan = plan_preflight(profile, settings)
    async for event in run_checks(plan.checks, plan.skipped):
        yield event
