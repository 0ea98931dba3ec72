"""The install plan: a profile turned into ordered steps with explicit dependencies.

    namespace ─┬─ secrets ──────┬─ ClickHouse (engine/plan_clickhouse.py) ── helm/<release> ── verify
               └─ secrets/pull ─┘

Steps whose dependencies are all done run concurrently (here `secrets` and `secrets/pull`). The
platform's Ingress is part of the platform chart, not a step of its own: it routes to the modules'
Services of the same release, so one Helm revision owns all of them and a rollback takes them back
together. The install lock is not a step either: it is held for the whole run (install or resume),
so it has nothing to record as "done".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hfwizard import values
from hfwizard.platform.clickhouse import AppliedObject
from hfwizard.profile import InstallProfile
from hfwizard.values import ReleaseSpec, SecretSpec


class StepKind(StrEnum):
    """What a step does; each kind has its runner in `hfwizard.engine.steps` (one module per kind,
    registered with `@register(StepKind.X)`), so adding a kind never touches the run loop."""

    NAMESPACE = "namespace"
    SECRETS = "secrets"
    RELEASE = "release"
    OBJECTS = "objects"
    VERIFY = "verify"


@dataclass(frozen=True)
class Step:
    """One unit of the install: done once, recorded in the journal, checked again on resume."""

    id: str  # reads like a path: "namespace", "secrets", "helm/clickhouse-operator", "clickhouse/server", "verify"
    title: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()  # SECRETS: the Secrets this step writes
    release: ReleaseSpec | None = None  # RELEASE: the Helm release this step installs or upgrades
    objects: tuple[AppliedObject, ...] = ()  # OBJECTS: what this step applies server-side, in order
    namespace: str | None = None  # where the step works when not the plan's namespace (ClickHouse's own)


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
    def releases(self) -> list[ReleaseSpec]:
        return [s.release for s in self.steps if s.release is not None]

    def ready(self, done: set[str], started: set[str]) -> list[Step]:
        """Steps not yet started whose dependencies are all done, in plan order."""
        return [s for s in self.steps if s.id not in started and s.id not in done
                and all(d in done for d in s.depends_on)]

    def dependents(self, step_id: str) -> set[str]:
        """Every step that needs `step_id`, directly or through another step."""
        out: set[str] = set()
        frontier = {step_id}
        while frontier:
            nxt = {s.id for s in self.steps if set(s.depends_on) & frontier} - out
            out |= nxt
            frontier = nxt
        return out


PULL_SECRET_STEP = "secrets/pull"


def release_step_id(release: str) -> str:
    return f"helm/{release}"


def _clickhouse_steps(profile: InstallProfile, after: tuple[str, ...]) -> list[Step]:
    from hfwizard.engine.plan_clickhouse import clickhouse_steps  # it builds on this module's Step
    from hfwizard.platform.catalog import load_catalog

    return clickhouse_steps(profile, load_catalog(profile.platform.version), after)


def build_plan(profile: InstallProfile) -> Plan:
    """The steps of an install of `profile`, in an order that respects every dependency."""
    ns = profile.target.namespace
    all_secrets = values.secrets(profile)
    pull = tuple(s for s in all_secrets if s.type == "kubernetes.io/dockerconfigjson")
    others = tuple(s for s in all_secrets if s not in pull)
    steps: list[Step] = [Step("namespace", f"Namespace {ns}", StepKind.NAMESPACE)]
    secret_steps = ["secrets"]
    steps.append(Step("secrets", f"Secrets ({len(others)}) from references", StepKind.SECRETS,
                      ("namespace",), secrets=others))
    if pull:
        # The pull secret comes from another source (the registry token) and nothing else needs it
        # first, so it is written beside the others rather than after them.
        steps.append(Step(PULL_SECRET_STEP, f"Image pull secret for {profile.images.registry}",
                          StepKind.SECRETS, ("namespace",), secrets=pull))
        secret_steps.append(PULL_SECRET_STEP)
    steps += _clickhouse_steps(profile, tuple(secret_steps))  # ClickHouse: see engine/plan_clickhouse.py
    # The platform's modules connect to ClickHouse as they start: they wait for its server.
    previous: tuple[str, ...] = (*secret_steps, "clickhouse/server")
    release_ids: list[str] = []
    for rel in values.releases(profile):
        if rel.key == "clickhouse":
            continue  # the Altinity operator's installations (above) replace the bundled chart
        sid = release_step_id(rel.release)
        steps.append(Step(sid, f"Highflame modules (release {rel.release})", StepKind.RELEASE, previous, release=rel))
        previous = (*secret_steps, sid)
        release_ids.append(sid)
    steps.append(Step("verify", "Verify workloads, Services and ingress", StepKind.VERIFY,
                      (*release_ids, "clickhouse/backup")))
    return Plan(ns, tuple(steps))
