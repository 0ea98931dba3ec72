"""The install plan: a profile and its platform catalog turned into steps with explicit dependencies.

    charts ─ namespace ─┬─ secrets/generated ──┬─ secrets/env ─┐
                        ├─ secrets/prerequisites┘              ├─ helm/<release> … (along the catalog's
                        ├─ databases ──────────────────────────┤   waitFor) ─ verify
                        ├─ secrets/keys ───────────────────────┤ (only releases that mount a key pair)
                        └─ ClickHouse (engine/plan_clickhouse.py) ┘ (only releases that read ClickHouse)

`charts` fetches and checks every chart first, so a wrong digest, a missing version or an unreachable
repository fails before anything in the cluster changes. Each service is its own release step; a release
waits only for the releases the catalog says it needs (flag, authn and the data services come first), so
independent ones run side by side, bounded by install.maxParallel. The install lock is not a step: it is
held for the whole run, so it has nothing to record as "done".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from hfwizard.platform.catalog import Catalog, load_catalog
from hfwizard.platform.secretsets import PLATFORM_SECRETS, generated_secrets, prerequisite_secrets
from hfwizard.platform.secretspec import SecretSpec
from hfwizard.platform.values import ServiceRelease, databases, service_releases
from hfwizard.profile import Cloud, InstallProfile


class StepKind(StrEnum):
    """What a step does; each kind has its runner in `hfwizard.engine.steps` (one module per kind,
    registered with `@register(StepKind.X)`), so adding a kind never touches the run loop."""

    CHARTS = "charts"
    NAMESPACE = "namespace"
    SECRETS = "secrets"
    DATABASES = "databases"
    RELEASE = "release"
    OBJECTS = "objects"
    CRDS = "crds"  # the CustomResourceDefinitions of a chart's crds/ folder, before its release (steps/crds.py)
    VERIFY = "verify"
    UNINSTALL = "uninstall"  # day two: remove one Helm release (steps/uninstall.py)
    DELETE_OBJECTS = "delete-objects"  # day two: objects hfwizard applied itself (steps/uninstall.py)
    DELETE_DATA = "delete-data"  # day two: the install's PVCs and Secrets, only when asked (steps/uninstall.py)
    UPGRADE_SNAPSHOT = "upgrade-snapshot"  # day two: what a rollback goes back to (steps/upgrade.py)


@dataclass(frozen=True)
class Step:
    """One unit of the install: done once, recorded in the journal, checked again on resume."""

    id: str  # reads like a path: "namespace", "secrets/env", "helm/highflame-admin", "clickhouse/server"
    title: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()  # SECRETS: the Secrets this step writes
    release: ServiceRelease | None = None  # RELEASE: the Helm release this step installs or upgrades; CRDS: its chart
    databases: tuple[str, ...] = ()  # DATABASES: the databases this step makes sure exist
    # CHARTS: (chart, version, repository) to fetch and check; repository None: the platform's (charts.*)
    charts: tuple[tuple[str, str, str | None], ...] = ()
    # OBJECTS: the AppliedObjects it applies server-side, in order; DELETE_OBJECTS: the objects (dicts) it
    # deletes (day two's uninstall).
    objects: tuple[Any, ...] = ()
    namespace: str | None = None  # where the step works when not the plan's namespace (ClickHouse's own)
    subject: str = ""  # UNINSTALL: the release it removes


@dataclass(frozen=True)
class Plan:
    namespace: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]

    @property
    def releases(self) -> list[ServiceRelease]:
        return [s.release for s in self.steps if s.release is not None and s.kind is StepKind.RELEASE]

    def ready(self, done: set[str], started: set[str]) -> list[Step]:
        """Steps not yet started whose dependencies are all done, the longest chain behind them first
        (then plan order): a free slot goes to the critical path, never to a leaf."""
        ready = [s for s in self.steps if s.id not in started and s.id not in done
                 and all(d in done for d in s.depends_on)]
        return sorted(ready, key=lambda s: -self._chains[s.id])

    def chains(self) -> dict[str, int]:
        """Per step, the readiness waits in the longest chain that starts with it (itself included): one per
        step, a release's own hook Jobs added (ServiceRelease.waits)."""
        return dict(self._chains)

    @cached_property
    def _chains(self) -> dict[str, int]:
        # Computed once per plan: the run loop asks for the ready steps after every step that ends.
        waiting: dict[str, list[str]] = {s.id: [] for s in self.steps}
        for s in self.steps:
            for d in s.depends_on:
                waiting.setdefault(d, []).append(s.id)
        length: dict[str, int] = {}
        for s in reversed(self.topological()):
            weight = s.release.waits if s.kind is StepKind.RELEASE and s.release is not None else 1
            length[s.id] = weight + max((length[w] for w in waiting[s.id] if w in length), default=0)
        return length

    def topological(self) -> list[Step]:
        """The steps with each after everything it depends on (plan order where free)."""
        placed: set[str] = set()
        order: list[Step] = []
        pending = list(self.steps)
        while pending:
            progress = [s for s in pending if all(d in placed or d not in self.ids for d in s.depends_on)]
            if not progress:
                raise ValueError(f"steps wait for each other in a circle: {[s.id for s in pending]}")
            for s in progress:
                placed.add(s.id)
                order.append(s)
            pending = [s for s in pending if s.id not in placed]
        return order

    def dependents(self, step_id: str) -> set[str]:
        """Every step that needs `step_id`, directly or through another step."""
        out: set[str] = set()
        frontier = {step_id}
        while frontier:
            nxt = {s.id for s in self.steps if set(s.depends_on) & frontier} - out
            out |= nxt
            frontier = nxt
        return out


REHEARSAL_FILLER = "env:HFWIZARD_REHEARSAL_FILLER"
"""The reference a rehearsal gives to inputs nobody has for it: never resolved, always a placeholder."""
CHARTS_STEP = "charts"
GENERATED_STEP = "secrets/generated"
KEYS_STEP = "secrets/keys"
PREREQUISITES_STEP = "secrets/prerequisites"
ENV_STEP = "secrets/env"
DATABASES_STEP = "databases"
CLICKHOUSE_READY_STEP = "clickhouse/setup"
"""The ClickHouse step after which its server answers with the platform's database in it (the setup Job
creates it): the services that read ClickHouse wait for it."""


def release_step_id(release: str) -> str:
    return f"helm/{release}"


def values_profile(profile: InstallProfile) -> InstallProfile:
    """The profile whose cloud the values are made for: a rehearsal (target.cloud sandbox) uses the cloud it
    rehearses (target.rehearses, AWS by default), so the sandbox installs the same values a cloud would."""
    if profile.target.cloud is not Cloud.SANDBOX:
        return profile
    target = profile.target.model_copy(update={"cloud": profile.target.rehearses or Cloud.AWS})
    # Inputs nobody has for a rehearsal (the license files) get a filler reference: their Secret is made
    # (with a placeholder), so the pods that mount it start as they would.
    lic = profile.platform.license
    license = lic.model_copy(update={"jwt": lic.jwt or REHEARSAL_FILLER,
                                     "public_key": lic.public_key or REHEARSAL_FILLER})
    platform = profile.platform.model_copy(update={"license": license})
    return profile.model_copy(update={"target": target, "platform": platform})


def build_plan(profile: InstallProfile, catalog: Catalog | None = None) -> Plan:
    """The steps of an install of `profile`, in an order that respects every dependency."""
    catalog = catalog or load_catalog(profile.platform.version)
    vp = values_profile(profile)
    ns = profile.target.namespace
    releases = service_releases(vp, catalog)
    clickhouse = clickhouse_steps(profile, catalog)
    pins: list[tuple[str, str, str | None]] = sorted({(r.chart, r.version, None) for r in releases})
    op = catalog.clickhouse_operator  # fetched by the same step into the same cache, from its own repository
    pins.append((op.name, op.version, op.repository))
    steps: list[Step] = [
        Step(CHARTS_STEP, f"Charts of platform {catalog.platform} ({len(pins)}), digests checked",
             StepKind.CHARTS, charts=tuple(pins)),
        Step("namespace", f"Namespace {ns}", StepKind.NAMESPACE, (CHARTS_STEP,)),
    ]
    # Key pairs take seconds to generate and only the services that mount them wait for them; the
    # platform secrets the env Secrets read are quick.
    generated = tuple(s for s in generated_secrets(catalog) if s.name == PLATFORM_SECRETS)
    keys = tuple(s for s in generated_secrets(catalog) if s.name != PLATFORM_SECRETS)
    prereq = tuple(prerequisite_secrets(vp, catalog))
    env = tuple(r.env_secret for r in releases if r.env_secret is not None)
    steps.append(Step(GENERATED_STEP, f"Platform secrets, generated once ({len(generated)})", StepKind.SECRETS,
                      ("namespace",), secrets=generated))
    steps.append(Step(KEYS_STEP, f"Signing key pairs, generated once ({len(keys)})", StepKind.SECRETS,
                      ("namespace",), secrets=keys))
    key_names = {s.name for s in keys}
    steps.append(Step(PREREQUISITES_STEP, f"Prerequisite Secrets from references ({len(prereq)})",
                      StepKind.SECRETS, ("namespace",), secrets=prereq))
    # Env Secrets read generated keys through k8s: references, so they come after both.
    steps.append(Step(ENV_STEP, f"Service environment Secrets ({len(env)})", StepKind.SECRETS,
                      (GENERATED_STEP, PREREQUISITES_STEP), secrets=env))
    before: list[str] = [ENV_STEP, PREREQUISITES_STEP]
    dbs = tuple(databases(vp, catalog))
    if dbs:
        steps.append(Step(DATABASES_STEP, f"Databases on PostgreSQL {profile.postgres.host or ''} ({len(dbs)})",
                          StepKind.DATABASES, ("namespace",), databases=dbs))
        before.append(DATABASES_STEP)
    steps += clickhouse
    known = {s.id for s in steps}
    release_ids: list[str] = []
    for rel in critical_first(releases):
        needs = [release_step_id(d) for d in rel.depends_on]
        if key_names & set(rel.secrets_used):
            needs.append(KEYS_STEP)
        if CLICKHOUSE_READY_STEP in known and reads_clickhouse(catalog, rel.service):
            needs.append(CLICKHOUSE_READY_STEP)
        steps.append(Step(release_step_id(rel.release), f"{rel.service} (release {rel.release}, "
                          f"{rel.chart} {rel.version})", StepKind.RELEASE, (*before, *needs), release=rel))
        release_ids.append(release_step_id(rel.release))
    # Verify comes last: after the releases and after ClickHouse's last step (its backup CronJob).
    last_clickhouse = [s.id for s in clickhouse if s.kind is StepKind.OBJECTS][-1:]
    steps.append(Step("verify", "Verify workloads, Services and ingress", StepKind.VERIFY,
                      (*release_ids, *last_clickhouse)))
    return Plan(ns, tuple(steps))


def critical_first(releases: list[ServiceRelease]) -> list[ServiceRelease]:
    """The releases in an order that respects depends_on and, among those ready together, starts first the
    one with the longest chain of releases waiting behind it: the engine starts ready steps in plan order,
    so with install.maxParallel slots the critical path never queues behind a leaf."""
    below: dict[str, int] = {}

    def depth(name: str) -> int:  # the longest chain of releases that wait for this one
        if name not in below:
            waiting = [r.release for r in releases if name in r.depends_on]
            below[name] = 1 + max((depth(w) for w in waiting), default=0)
        return below[name]

    # A release's depth exceeds that of every release waiting for it, so this order is also topological;
    # the sort is stable, so equals keep the catalog's order.
    return sorted(releases, key=lambda r: -depth(r.release))


def clickhouse_steps(profile: InstallProfile, catalog: Catalog) -> list[Step]:
    """ClickHouse's steps: the operator release, its Secrets (after the generated platform secrets: the admin
    password is one of them) and the objects the operator reconciles. See engine/plan_clickhouse.py."""
    from hfwizard.engine.plan_clickhouse import clickhouse_steps as steps  # it builds on this module's Step

    return steps(profile, catalog, ("namespace",), secrets_after=(GENERATED_STEP,))


def reads_clickhouse(catalog: Catalog, service: str) -> bool:
    """Whether a service talks to ClickHouse (collector, observatory): it starts after the server answers."""
    svc = catalog.services.get(service)  # GKE's shared `ingress` release is no catalog service
    return svc is not None and any(var.startswith("CLICKHOUSE_") for var in svc.env)
