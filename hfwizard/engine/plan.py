"""The install plan: a profile turned into ordered steps with explicit dependencies.

    namespace ─┬─ secrets ──────┬─ helm/<release>-clickhouse ── helm/<release> ── verify
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
from typing import Any

from hfwizard import values
from hfwizard.profile import InstallProfile
from hfwizard.values import ReleaseSpec, SecretSpec


class StepKind(StrEnum):
    """What a step does; each kind has its runner in `hfwizard.engine.steps` (one module per kind,
    registered with `@register(StepKind.X)`), so adding a kind never touches the run loop."""

    NAMESPACE = "namespace"
    SECRETS = "secrets"
    RELEASE = "release"
    VERIFY = "verify"
    UNINSTALL = "uninstall"  # day two: remove one Helm release (steps/uninstall.py)
    DELETE_OBJECTS = "delete-objects"  # day two: objects hfwizard applied itself (steps/uninstall.py)
    DELETE_DATA = "delete-data"  # day two: the install's PVCs and Secrets, only when asked (steps/uninstall.py)
    UPGRADE_SNAPSHOT = "upgrade-snapshot"  # day two: what a rollback goes back to (steps/upgrade.py)


@dataclass(frozen=True)
class Step:
    """One unit of the install: done once, recorded in the journal, checked again on resume."""

    id: str  # reads like a path: "namespace", "secrets", "helm/highflame-clickhouse", "verify"
    title: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()  # SECRETS: the Secrets this step writes
    release: ReleaseSpec | None = None  # RELEASE: the Helm release this step installs or upgrades
    subject: str = ""  # UNINSTALL: the release it removes
    objects: tuple[dict[str, Any], ...] = ()  # DELETE_OBJECTS: the objects it deletes, in order


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
    previous: tuple[str, ...] = tuple(secret_steps)
    release_ids: list[str] = []
    for rel in values.releases(profile):
        sid = release_step_id(rel.release)
        title = ("ClickHouse" if rel.key == "clickhouse" else "Highflame modules") + f" (release {rel.release})"
        # releases() lists them in install order: each release waits for the one before it
        # (the platform's modules connect to ClickHouse as they start).
        steps.append(Step(sid, title, StepKind.RELEASE, previous, release=rel))
        previous = (*secret_steps, sid)
        release_ids.append(sid)
    steps.append(Step("verify", "Verify workloads, Services and ingress", StepKind.VERIFY, tuple(release_ids)))
    return Plan(ns, tuple(steps))
