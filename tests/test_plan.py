"""The install plan: steps, their order and dependencies, from a profile (no cluster needed)."""

from __future__ import annotations

from hfwizard.engine.plan import PULL_SECRET_STEP, StepKind, build_plan
from hfwizard.profile import InstallProfile


def _profile(**data: object) -> InstallProfile:
    return InstallProfile.model_validate({"apiVersion": "hfwizard/v1", "kind": "InstallProfile", **data})


CLICKHOUSE = ["clickhouse/secrets", "helm/clickhouse-operator", "clickhouse/identity", "clickhouse/keeper",
              "clickhouse/server", "clickhouse/setup", "clickhouse/backup"]


def test_steps_in_dependency_order() -> None:
    plan = build_plan(_profile(target={"namespace": "hf", "release": "prod"},
                               images={"pullUsername": "robot", "pullSecret": "env:TOKEN"}))
    assert plan.ids == ["namespace", "secrets", PULL_SECRET_STEP, *CLICKHOUSE, "helm/prod", "verify"]
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.depends_on) <= seen, f"{step.id} comes before what it needs"
        seen.add(step.id)
    assert plan.step("helm/prod").depends_on == ("secrets", PULL_SECRET_STEP, "clickhouse/server")
    assert plan.step("verify").depends_on == ("helm/prod", "clickhouse/backup")
    assert plan.namespace == "hf"


def test_independent_steps_are_ready_together() -> None:
    plan = build_plan(_profile(images={"pullUsername": "robot", "pullSecret": "env:TOKEN"}))
    assert [s.id for s in plan.ready(done={"namespace"}, started=set())] == ["secrets", PULL_SECRET_STEP]
    assert plan.ready(done={"namespace", "secrets"}, started={PULL_SECRET_STEP}) == []
    assert plan.dependents("secrets") == {*CLICKHOUSE, "helm/highflame", "verify"}


def test_pull_secret_step_only_with_a_token() -> None:
    assert PULL_SECRET_STEP not in build_plan(_profile()).ids
    k8s = build_plan(_profile(images={"pullSecret": "k8s:regcred/.dockerconfigjson"}))
    assert PULL_SECRET_STEP not in k8s.ids, "a k8s: reference names a Secret that exists already"


def test_secrets_step_carries_the_specs_never_values() -> None:
    plan = build_plan(_profile(postgres={"password": "env:PGPASSWORD"}, clerk={"secretKey": "file:/run/clerk"},
                               platform={"modelApiKeys": {"openai": "env:OPENAI"}}))
    step = plan.step("secrets")
    assert step.kind is StepKind.SECRETS
    names = {s.name: s for s in step.secrets}
    assert names["highflame-postgres"].entries == {"password": "env:PGPASSWORD"}
    assert names["highflame-clickhouse-auth"].generated == ("password",)
    assert "highflame-model-api-keys" in names


def test_release_steps_carry_values_from_values_py() -> None:
    plan = build_plan(_profile(modules={"redTeaming": {"enabled": False},
                                        "guardrails": {"replicas": 3, "hpa": {"minReplicas": 3, "maxReplicas": 9}}}))
    rel = plan.step("helm/highflame").release
    assert rel is not None and rel.chart_ref == "bundled:highflame"
    mods = rel.values["modules"]
    assert mods["redTeaming"]["enabled"] is False
    assert mods["guardrails"]["replicas"] == 3 and mods["guardrails"]["hpa"]["maxReplicas"] == 9
    assert mods["guardrails"]["pdb"] == {"enabled": True, "minAvailable": 1}
