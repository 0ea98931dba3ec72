"""ClickHouse's steps of the plan: the Altinity operator release, then Keeper, server, setup Job, backups.

    secrets/generated ── clickhouse/secrets ──────────┐
    helm/clickhouse-operator ─┬─ clickhouse/identity ─┤
                              └─ clickhouse/keeper ───┴─ clickhouse/server ── clickhouse/setup ── clickhouse/backup

The operator comes from its chart (pinned in the platform catalog, fetched and checked by the `charts` step
into the install's chart cache like every other chart; its CRDs through the chart's own pre-install hook
Job); everything else is applied server-side by the `objects` step kind. Platform services that read
ClickHouse depend on `CLICKHOUSE_READY_STEP` (engine/plan.py: the setup Job, which creates the database).
"""

from __future__ import annotations

from hfwizard.engine.plan import Step, StepKind
from hfwizard.platform import clickhouse as ch
from hfwizard.platform.catalog import Catalog
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile

OPERATOR_RELEASE = "clickhouse-operator"
CLICKHOUSE_SERVER = "clickhouse/server"
SECRETS_STEP = "clickhouse/secrets"

_TITLES = {
    "clickhouse/identity": "ClickHouse ServiceAccount and backup config",
    "clickhouse/keeper": "ClickHouse Keeper (ClickHouseKeeperInstallation)",
    "clickhouse/server": "ClickHouse servers (ClickHouseInstallation)",
    "clickhouse/setup": "ClickHouse setup Job (database, log TTLs)",
    "clickhouse/backup": "ClickHouse backup CronJob",
}
# Each step waits for these besides the operator release (Keeper's Service before the server, the
# server before the setup Job, the database before backups).
_NEEDS = {
    "clickhouse/identity": (),
    "clickhouse/keeper": (),
    "clickhouse/server": ("clickhouse/identity", "clickhouse/keeper", SECRETS_STEP),
    "clickhouse/setup": ("clickhouse/server",),
    "clickhouse/backup": ("clickhouse/setup",),
}


def operator_release(profile: InstallProfile, catalog: Catalog) -> ServiceRelease:
    """The operator release; its chart is the catalog's pin, taken from the install's chart cache."""
    pin = catalog.clickhouse_operator
    return ServiceRelease(service=OPERATOR_RELEASE, release=OPERATOR_RELEASE, chart=pin.name, version=pin.version,
                          values=ch.operator_values(profile), depends_on=(), module="core", env_secret=None)


def clickhouse_steps(profile: InstallProfile, catalog: Catalog, after: tuple[str, ...] = ("namespace",),
                     secrets_after: tuple[str, ...] = ()) -> list[Step]:
    """ClickHouse's steps, each after `after` (the namespace); its Secrets also after `secrets_after` (the
    generated platform secrets: the admin password is `highflame-platform-secrets/clickhouse-admin-password`,
    the one the platform's services read)."""
    ns = ch.namespace(profile)
    own_ns = ns if ns != profile.target.namespace else None
    steps: list[Step] = []
    base = after
    if own_ns is not None:
        steps.append(Step("namespace/clickhouse", f"Namespace {ns} (ClickHouse)", StepKind.NAMESPACE, after,
                          namespace=own_ns))
        base = (*after, "namespace/clickhouse")
    specs = tuple(ch.secret_specs(profile))
    steps.append(Step(SECRETS_STEP, f"ClickHouse Secrets ({len(specs)})", StepKind.SECRETS,
                      tuple(dict.fromkeys((*base, *secrets_after))), secrets=specs, namespace=own_ns))
    spec = operator_release(profile, catalog)
    helm_id = f"helm/{spec.release}"
    steps.append(Step(helm_id, f"ClickHouse operator (release {spec.release}, {spec.chart} {spec.version})",
                      StepKind.RELEASE, after, release=spec))
    by_step: dict[str, list[ch.AppliedObject]] = {}
    for applied in ch.applied_objects(profile):
        by_step.setdefault(applied.step, []).append(applied)
    for step_id, objects in by_step.items():
        needs = (*base, helm_id, *_NEEDS.get(step_id, ()))
        steps.append(Step(step_id, _TITLES.get(step_id, step_id), StepKind.OBJECTS, tuple(dict.fromkeys(needs)),
                          objects=tuple(objects), namespace=own_ns))
    return steps


__all__ = ["CLICKHOUSE_SERVER", "OPERATOR_RELEASE", "SECRETS_STEP", "clickhouse_steps",
           "operator_release"]
