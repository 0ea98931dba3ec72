"""The install plan: steps, their order and dependencies, from a profile and the platform catalog (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfwizard.engine.plan import (
    CHARTS_STEP,
    CLICKHOUSE_READY_STEP,
    DATABASES_STEP,
    ENV_STEP,
    GENERATED_STEP,
    PREREQUISITES_STEP,
    StepKind,
    build_plan,
    reads_clickhouse,
    values_profile,
)
from hfwizard.engine.plan_clickhouse import OPERATOR_RELEASE
from hfwizard.platform import clickhouse as ch
from hfwizard.platform.catalog import load_catalog
from hfwizard.profile import Cloud
from hfwizard.profile_io import load_profile
from tests.platform_support import cloud_profile

ROOT = Path(__file__).resolve().parent.parent


def test_steps_in_dependency_order_charts_first() -> None:
    plan = build_plan(cloud_profile("aws"))
    assert plan.ids[:2] == [CHARTS_STEP, "namespace"]
    assert plan.ids[-1] == "verify"
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.depends_on) <= seen, f"{step.id} comes before what it needs"
        seen.add(step.id)
    # Nothing in the cluster changes before every chart is fetched and checked.
    assert plan.dependents(CHARTS_STEP) == set(plan.ids) - {CHARTS_STEP}


def test_one_release_step_per_service_along_the_catalogs_wait_for() -> None:
    catalog = load_catalog()
    plan = build_plan(cloud_profile("aws"), catalog)
    releases = [s for s in plan.steps if s.kind is StepKind.RELEASE and s.id != f"helm/{OPERATOR_RELEASE}"]
    assert len(releases) == 19
    admin = plan.step("helm/highflame-admin")
    assert {"helm/highflame-flag", "helm/highflame-authn", ENV_STEP, DATABASES_STEP} <= set(admin.depends_on)
    for step in releases:
        assert step.release is not None
        svc = catalog.services[step.release.service]
        assert {f"helm/{catalog.release_name(d)}" for d in svc.wait_for} <= set(step.depends_on)
    # The first services wait for nothing but the Secrets and databases: they start side by side.
    first = plan.ready(done={CHARTS_STEP, "namespace", GENERATED_STEP, PREREQUISITES_STEP, ENV_STEP,
                             DATABASES_STEP, "clickhouse/crds"}, started=set())
    assert {"helm/highflame-flag", "helm/clickhouse-operator"} <= {s.id for s in first}
    assert "helm/highflame-admin" not in {s.id for s in first}
    assert "helm/highflame-collector" not in {s.id for s in first}, "the collector waits for ClickHouse"


def test_secret_steps_carry_specs_never_values() -> None:
    plan = build_plan(cloud_profile("aws"))
    generated = plan.step(GENERATED_STEP)
    assert all(s.is_generated for s in generated.secrets)
    assert "highflame-platform-secrets" in {s.name for s in generated.secrets}
    env = plan.step(ENV_STEP)
    assert set(env.depends_on) == {GENERATED_STEP, PREREQUISITES_STEP}
    assert {s.name for s in env.secrets} >= {"highflame-admin-env", "highflame-authn-env"}
    refs = [r for step in (generated, env, plan.step(PREREQUISITES_STEP)) for s in step.secrets for r in s.references]
    assert "env:HF_CANARY_PG" in " ".join(refs)


def test_values_never_carry_a_reference() -> None:
    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        plan = build_plan(load_profile(path).profile)
        text = json.dumps([r.values for r in plan.releases])
        for prefix in ("env:", "file:", "keyring:", "k8s:"):
            assert prefix not in text, f"{path.name}: a reference leaked into values"


def test_the_sandbox_uses_the_cloud_it_rehearses() -> None:
    sandbox = load_profile(ROOT / "profiles" / "sandbox.yaml").profile
    assert sandbox.is_sandbox and values_profile(sandbox).target.cloud is Cloud.AWS
    assert len(build_plan(sandbox).releases) == 19 + 1  # the platform's services and the ClickHouse operator
    gcp = sandbox.model_copy(update={"target": sandbox.target.model_copy(update={"rehearses": Cloud.GCP})})
    assert values_profile(gcp).target.cloud is Cloud.GCP


@pytest.mark.parametrize("module, gone", [("guardrails", "helm/highflame-guard"),
                                          ("redTeaming", "helm/highflame-redteam")])
def test_a_module_off_drops_its_releases(module: str, gone: str) -> None:
    plan = build_plan(cloud_profile("aws", **{f"modules.{module}.enabled": False}))
    assert gone not in plan.ids and gone in build_plan(cloud_profile("aws")).ids


CLICKHOUSE = ["clickhouse/crds", "clickhouse/secrets", "helm/clickhouse-operator", "clickhouse/identity",
              "clickhouse/keeper", "clickhouse/server", "clickhouse/setup", "clickhouse/backup"]


def test_clickhouse_through_the_operator_before_the_services_that_read_it() -> None:
    catalog = load_catalog()
    plan = build_plan(cloud_profile("aws"), catalog)
    assert [i for i in plan.ids if i.startswith(("clickhouse/", "helm/clickhouse"))] == CLICKHOUSE
    assert [s.kind for s in plan.steps if s.id in CLICKHOUSE[3:]] == [StepKind.OBJECTS] * 5
    # The operator's CRDs come from its chart's crds/ folder before the release, which has its CRD hook off.
    crds, operator = plan.step("clickhouse/crds"), plan.step(f"helm/{OPERATOR_RELEASE}")
    assert crds.kind is StepKind.CRDS and crds.depends_on == (CHARTS_STEP,) and crds.release == operator.release
    assert "clickhouse/crds" in operator.depends_on
    assert operator.release is not None and operator.release.values["crdHook"] == {"enabled": False}
    # Keeper and the servers come up side by side; the setup Job (ON CLUSTER DDL) waits for both.
    assert "clickhouse/keeper" not in plan.step("clickhouse/server").depends_on
    assert {"clickhouse/server", "clickhouse/keeper"} <= set(plan.step("clickhouse/setup").depends_on)
    # The operator's chart is fetched and digest-checked by the charts step, from its own repository.
    op = catalog.clickhouse_operator
    assert (op.name, op.version, op.repository) in plan.step(CHARTS_STEP).charts
    assert op.repository == "https://helm.altinity.com"
    # Collector and observatory read ClickHouse: they wait for the setup Job (the database exists then).
    assert CLICKHOUSE_READY_STEP == "clickhouse/setup"
    readers = {s.id for s in plan.steps if s.release is not None and reads_clickhouse(catalog, s.release.service)}
    assert readers == {"helm/highflame-collector", "helm/highflame-observatory"}
    for step in plan.steps:
        if step.kind is StepKind.RELEASE:
            assert (CLICKHOUSE_READY_STEP in step.depends_on) == (step.id in readers), step.id
    assert "clickhouse/backup" in plan.step("verify").depends_on


def test_clickhouse_admin_password_is_the_platforms_generated_one() -> None:
    """One source of truth: clickhouse-secrets copies the generated key collector and observatory read."""
    plan = build_plan(cloud_profile("aws"))
    step = plan.step("clickhouse/secrets")
    assert GENERATED_STEP in step.depends_on
    users = next(s for s in step.secrets if s.name == ch.SECRET_NAME)
    admin = users.entries[ch.ADMIN_PASSWORD_KEY]
    assert admin.ref == "k8s:highflame-platform-secrets/clickhouse-admin-password"
    assert set(users.generated_keys) == {"CH_READONLY_PASSWORD", "CH_BACKUP_PASSWORD"}
    for release in ("highflame-collector", "highflame-observatory"):
        rel = plan.step(f"helm/{release}").release
        assert rel is not None and rel.env_secret is not None
        assert rel.env_secret.entries["CLICKHOUSE_PASSWORD"].ref == admin.ref
    generated = {k for s in plan.step(GENERATED_STEP).secrets for k in s.generated_keys}
    assert "clickhouse-admin-password" in generated


def test_clickhouse_in_its_own_namespace() -> None:
    plan = build_plan(cloud_profile("aws", **{"clickhouse.namespace": "clickhouse"}))
    assert plan.step("namespace/clickhouse").namespace == "clickhouse"
    for sid in ("clickhouse/secrets", "clickhouse/keeper", "clickhouse/server", "clickhouse/setup"):
        assert plan.step(sid).namespace == "clickhouse" and "namespace/clickhouse" in plan.step(sid).depends_on
    assert plan.step("helm/clickhouse-operator").namespace is None  # the operator runs beside the platform
    assert plan.step("clickhouse/server").objects[0].obj["metadata"]["namespace"] == "clickhouse"


def test_a_free_slot_goes_to_the_longest_chain_first() -> None:
    """With ClickHouse, the operator release heads the longest chain (operator, keeper, server, setup,
    collector, observatory, verify): when it and the leaf releases are ready together it comes first, so
    install.maxParallel never makes it queue behind a leaf."""
    plan = build_plan(cloud_profile("aws"))
    chains = plan.chains()
    operator = f"helm/{OPERATOR_RELEASE}"
    assert chains[operator] > chains["helm/highflame-studio"] >= chains["verify"] == 1
    assert chains["charts"] == max(chains.values())
    before_releases = {s.id for s in plan.steps if s.kind is not StepKind.RELEASE and not s.id.startswith("clickhouse/")
                       and s.id != "verify"}
    done = before_releases | {"clickhouse/crds", "helm/highflame-flag", "helm/highflame-authn"}
    ready = [s.id for s in plan.ready(done, set(done))]
    assert ready[0] == operator and "helm/highflame-studio" in ready
    assert [chains[r] for r in ready] == sorted((chains[r] for r in ready), reverse=True)


def test_a_release_whose_chart_runs_a_hook_job_counts_two_waits() -> None:
    """highflame-redteam's seeder Job is a pre-install hook (the chart's own annotations): Helm waits for it,
    then for the Deployments. Among the releases ready after flag and authn it gets a slot first."""
    plan = build_plan(cloud_profile("aws"))
    chains = plan.chains()
    redteam = plan.step("helm/highflame-redteam")
    assert redteam.release is not None and redteam.release.waits == 2
    assert chains["helm/highflame-redteam"] == chains["helm/highflame-studio"] + 1 == 3
    done = {s.id for s in plan.steps if s.kind is not StepKind.RELEASE and not s.id.startswith("clickhouse/")
            and s.id != "verify"} | {"clickhouse/crds", f"helm/{OPERATOR_RELEASE}", "helm/highflame-flag",
                                     "helm/highflame-authn"}
    ready = [s.id for s in plan.ready(done, set(done)) if s.kind is StepKind.RELEASE]
    assert ready[0] == "helm/highflame-redteam", ready
