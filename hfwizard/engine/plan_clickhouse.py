"""ClickHouse's steps of the plan: the Altinity operator release, then Keeper, server, setup Job, backups.

    clickhouse/secrets ─────────────────────────┐
    helm/clickhouse-operator ─┬─ clickhouse/identity ─┤
                              └─ clickhouse/keeper ───┴─ clickhouse/server ── clickhouse/setup ── clickhouse/backup

The operator comes from its chart (pinned in the platform catalog; its CRDs through the chart's own
pre-install hook Job); everything else is applied server-side by the `objects` step kind. Platform
services that read ClickHouse depend on `CLICKHOUSE_READY` (the server Completed).
"""

from __future__ import annotations

import os

from hfwizard.engine.plan import Step, StepKind
from hfwizard.platform import clickhouse as ch
from hfwizard.platform.catalog import Catalog
from hfwizard.platform.charts import operator_source
from hfwizard.profile import InstallProfile
from hfwizard.values import ReleaseSpec

OPERATOR_RELEASE = "clickhouse-operator"
CLICKHOUSE_READY = "clickhouse/server"
SECRETS_STEP = "clickhouse/secrets"
# A rehearsal has no network to count on: a chart mirror folder for it (the operator's chart), used when
# the profile names none. Without either, the chart comes from its repository (helm.altinity.com).
SANDBOX_CHARTS_ENV = "HFWIZARD_SANDBOX_CHARTS"

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


def operator_release(profile: InstallProfile, catalog: Catalog) -> ReleaseSpec:
    """The operator release, its chart fetched from the profile's mirror or the catalog's pin."""
    pin = catalog.clickhouse_operator
    mirror = profile.charts.mirror or (os.environ.get(SANDBOX_CHARTS_ENV) if profile.is_sandbox else None)
    source = operator_source(catalog, mirror, None).location
    return ReleaseSpec("clickhouse-operator", OPERATOR_RELEASE, pin.name, None, pin.version,
                       ch.operator_values(profile), source=source)


def clickhouse_steps(profile: InstallProfile, catalog: Catalog, after: tuple[str, ...] = ("namespace",)) -> list[Step]:
    """ClickHouse's steps, each after `after` (the namespace and the platform's Secrets)."""
    ns = ch.namespace(profile)
    own_ns = ns if ns != profile.target.namespace else None
    steps: list[Step] = []
    base = after
    if own_ns is not None:
        steps.append(Step("namespace/clickhouse", f"Namespace {ns} (ClickHouse)", StepKind.NAMESPACE, after,
                          namespace=own_ns))
        base = (*after, "namespace/clickhouse")
    specs = tuple(ch.secret_specs(profile))
    steps.append(Step(SECRETS_STEP, f"ClickHouse Secrets ({len(specs)})", StepKind.SECRETS, base,
                      secrets=specs, namespace=own_ns))
    spec = operator_release(profile, catalog)
    helm_id = f"helm/{spec.release}"
    steps.append(Step(helm_id, f"ClickHouse operator (release {spec.release}, chart {spec.chart_ref} "
                               f"{spec.chart_version})", StepKind.RELEASE, after, release=spec))
    by_step: dict[str, list[ch.AppliedObject]] = {}
    for applied in ch.applied_objects(profile):
        by_step.setdefault(applied.step, []).append(applied)
    for step_id, objects in by_step.items():
        needs = (*base, helm_id, *_NEEDS.get(step_id, ()))
        steps.append(Step(step_id, _TITLES.get(step_id, step_id), StepKind.OBJECTS, tuple(dict.fromkeys(needs)),
                          objects=tuple(objects), namespace=own_ns))
    return steps


__all__ = ["CLICKHOUSE_READY", "OPERATOR_RELEASE", "SANDBOX_CHARTS_ENV", "SECRETS_STEP", "clickhouse_steps",
           "operator_release"]
