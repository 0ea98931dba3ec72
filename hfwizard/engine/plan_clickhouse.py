"""ClickHouse's steps of the plan: the operator's CRDs and release, then Keeper, server, setup Job, backups.

    secrets/generated ── clickhouse/secrets ─────────────────────────────────────────┐
    charts ── clickhouse/crds ── helm/clickhouse-operator ─┬─ clickhouse/identity ─┴─ clickhouse/server ─┐
                                                           └─ clickhouse/keeper ──────────────────────────┴─ ...
    ... ── clickhouse/setup ── clickhouse/backup

The operator comes from its chart (pinned in the platform catalog, fetched and checked by the `charts` step
into the install's chart cache like every other chart). Its CRDs are the chart's own `crds/` folder,
applied by the `crds` step kind before the release, on install and upgrade alike, in place of the chart's
CRD hook Job (turned off in the release's values, see platform/clickhouse.py `operator_values`);
everything else is applied server-side by the `objects` step kind. Platform services that read
ClickHouse depend on `CLICKHOUSE_READY_STEP` (engine/plan.py: the setup Job, which creates the database).
"""

from __future__ import annotations

from hfwizard.engine.plan import CHARTS_STEP, Step, StepKind
from hfwizard.platform import clickhouse as ch
from hfwizard.platform.catalog import Catalog
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile

OPERATOR_RELEASE = "clickhouse-operator"
CRDS_STEP = "clickhouse/crds"
CLICKHOUSE_SERVER = "clickhouse/server"
SECRETS_STEP = "clickhouse/secrets"

_TITLES = {
    "clickhouse/identity": "ClickHouse ServiceAccount and backup config",
    "clickhouse/keeper": "ClickHouse Keeper (ClickHouseKeeperInstallation)",
    "clickhouse/server": "ClickHouse servers (ClickHouseInstallation)",
    "clickhouse/setup": "ClickHouse setup Job (database, log TTLs)",
    "clickhouse/backup": "ClickHouse backup CronJob",
}
# Each step waits for these besides the operator release. Keeper and the servers come up side by side, as
# Altinity's own examples apply them: a ClickHouse server starts without its Keeper (it connects when
# Keeper answers; only replicated DDL needs it). The setup Job's `ON CLUSTER` statements go through
# Keeper, so it waits for both; backups wait for the database.
_NEEDS = {
    "clickhouse/identity": (),
    "clickhouse/keeper": (),
    "clickhouse/server": ("clickhouse/identity", SECRETS_STEP),
    "clickhouse/setup": ("clickhouse/server", "clickhouse/keeper"),
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
    spec = operator_release(profile, catalog)
    steps.append(Step(CRDS_STEP, f"ClickHouse operator's CRDs (from {spec.chart} {spec.version})", StepKind.CRDS,
                      (CHARTS_STEP,), release=spec))
    specs = tuple(ch.secret_specs(profile))
    steps.append(Step(SECRETS_STEP, f"ClickHouse Secrets ({len(specs)})", StepKind.SECRETS,
                      tuple(dict.fromkeys((*base, *secrets_after))), secrets=specs, namespace=own_ns))
    helm_id = f"helm/{spec.release}"
    steps.append(Step(helm_id, f"ClickHouse operator (release {spec.release}, {spec.chart} {spec.version})",
                      StepKind.RELEASE, (*after, CRDS_STEP), release=spec))
    by_step: dict[str, list[ch.AppliedObject]] = {}
    for applied in ch.applied_objects(profile):
        by_step.setdefault(applied.step, []).append(applied)
    for step_id, objects in by_step.items():
        needs = (*base, helm_id, *_NEEDS.get(step_id, ()))
        steps.append(Step(step_id, _TITLES.get(step_id, step_id), StepKind.OBJECTS, tuple(dict.fromkeys(needs)),
                          objects=tuple(objects), namespace=own_ns))
    return steps


__all__ = ["CLICKHOUSE_SERVER", "CRDS_STEP", "OPERATOR_RELEASE", "SECRETS_STEP", "clickhouse_steps",
           "operator_release"]
