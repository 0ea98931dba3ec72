"""Preflight learns the install's refusals before anything is installed: node groups and their capacity (on
the emulated cluster: no real API server can run here), missing platform inputs, and the services' databases
(on the real PostgreSQL 17.2 fixture); the backup identity check joins for an IRSA role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.checks.kubernetes import KubeTarget, kubernetes_checks
from hfwizard.checks.postgres import PostgresSpec, postgres_checks
from hfwizard.preflight import PreflightSettings, plan_preflight
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator import ClusterThread
from tests.fixtures.servers import PG_CREATOR, PG_PASSWORD, PG_USER, PgServer


def _profile(**data: Any) -> InstallProfile:
    return InstallProfile.model_validate({"apiVersion": "hfwizard/v1", "kind": "InstallProfile", **data})


async def _node_groups(kubeconfig: Path, profile: InstallProfile) -> CheckResult:
    checks = {c.id: c for c in kubernetes_checks(KubeTarget(kubeconfig=str(kubeconfig)), profile=profile)}
    return await checks["kubernetes/node-groups"].run()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Any]:
    handles: list[ClusterThread] = []

    def make(**seed: Any) -> Path:
        handle = ClusterThread(controllers=False).start()
        handles.append(handle)
        handle.call(lambda c: c.seed_default(**{"workers": 6, "cpu": "8", "memory": "32Gi", **seed}))
        return handle.write_kubeconfig(tmp_path / f"kubeconfig-{len(handles)}")

    yield make
    for handle in handles:
        handle.stop()


async def test_a_missing_gpu_group_fails_before_the_install(seeded: Any) -> None:
    got = await _node_groups(seeded(), _profile())
    assert got.status is Status.FAIL
    assert "no node is labelled kube/nodegroup=gpu" in got.finding
    assert "kube/nodegroup=general" not in got.finding  # the general group is there
    assert got.remedy is not None and got.remedy.startswith(
        "add a GPU node group labelled kube/nodegroup=gpu, or turn off the guardrails module "
        "(modules.guardrails.enabled: false)")


async def test_with_the_gpu_group_or_without_guardrails_it_passes(seeded: Any) -> None:
    with_gpu = await _node_groups(seeded(gpu_nodes=4), _profile())
    assert with_gpu.status is Status.PASS, with_gpu.finding
    assert "kube/nodegroup=gpu: 4 node(s)" in with_gpu.finding
    off = await _node_groups(seeded(), _profile(modules={"guardrails": {"enabled": False}}))
    assert off.status is Status.PASS, off.finding
    assert "gpu" not in off.finding


async def test_requests_above_allocatable_fail_naming_the_group(seeded: Any) -> None:
    got = await _node_groups(seeded(cpu="1", memory="4Gi"), _profile(modules={"guardrails": {"enabled": False}}))
    assert got.status is Status.FAIL, got.finding
    assert got.finding.startswith("kube/nodegroup=general: 6 node(s), 6 cores")
    assert "kube/nodegroup=general" in (got.remedy or "")


async def test_a_label_the_nodes_do_not_carry_names_the_setting(seeded: Any) -> None:
    got = await _node_groups(seeded(), _profile(modules={"guardrails": {"enabled": False}},
                                                sizing={"nodeGroups": {"label": "example.com/pool"}}))
    assert got.status is Status.FAIL
    assert "no node is labelled example.com/pool=general" in got.finding
    assert "sizing.nodeGroups.label" in (got.remedy or "")


async def test_platform_inputs_names_each_missing_field(tmp_path: Path) -> None:
    from hfwizard.checks.inputs import platform_inputs_check

    got = await platform_inputs_check(_profile(target={"cloud": "existing"})).run()
    assert got.status is Status.FAIL
    for field in ("platform.license.jwt", "platform.license.publicKey", "images.pullSecret", "postgres.host",
                  "redis.endpoints", "clerk.publishableKey", "ingress.domain"):
        assert field in got.finding
    full = _profile(target={"cloud": "existing"},
                    platform={"license": {"jwt": "file:l.jwt", "publicKey": "file:p.pem"}},
                    images={"pullSecret": "env:PULL"},
                    postgres={"host": "db.internal", "password": "env:PG"}, redis={"endpoints": ["r:6379"]},
                    clerk={"publishableKey": "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA", "secretKey": "env:SK"},
                    ingress={"domain": "hf.example.test"})
    assert (await platform_inputs_check(full).run()).status is Status.PASS


NAMES = ("javelin_data", "highflame_authn")


async def _create_database(pg: PgServer, user: str, **wanted: Any) -> CheckResult:
    spec = PostgresSpec(host=pg.host, port=pg.port, database="highflame", user=user, password=PG_PASSWORD,
                        sslmode="disable", timeout_s=5, **(wanted or {"databases": NAMES}))
    checks = {c.id: c for c in postgres_checks(spec)}
    return await checks["postgres/create-database"].run()


async def test_create_database_against_postgres_17(pg17: PgServer) -> None:
    refused = await _create_database(pg17, PG_USER)
    assert refused.status is Status.FAIL, refused.finding
    assert "user highflame may not create databases (no CREATEDB)" in refused.finding
    assert "javelin_data, highflame_authn" in refused.finding
    assert refused.remedy is not None and "ALTER ROLE highflame CREATEDB" in refused.remedy
    allowed = await _create_database(pg17, PG_CREATOR)
    assert allowed.status is Status.PASS, allowed.finding
    assert "the install will create javelin_data, highflame_authn" in allowed.finding
    assert PG_PASSWORD not in refused.finding + allowed.finding


async def test_the_databases_can_be_learnt_when_the_check_runs(pg17: PgServer) -> None:
    # The preflight passes the catalog's answer as a function: parsing the catalog never delays the start.
    asked: list[bool] = []
    late = await _create_database(pg17, PG_CREATOR, databases_from=lambda: asked.append(True) or NAMES)
    assert late.status is Status.PASS and asked == [True], late.finding
    assert "the install will create javelin_data, highflame_authn" in late.finding
    unplanned = await _create_database(pg17, PG_CREATOR, databases_from=lambda: ())
    assert unplanned.status is Status.SKIPPED and "see platform/inputs" in unplanned.finding


async def test_create_database_skipped_when_login_fails(pg17: PgServer) -> None:
    spec = PostgresSpec(host=pg17.host, port=pg17.port, user=PG_USER, password="wrong", sslmode="disable",
                        timeout_s=5, databases=NAMES)
    checks = {c.id: c for c in postgres_checks(spec)}
    got = await checks["postgres/create-database"].run()
    assert got.status is Status.SKIPPED and "could not log in" in got.finding


def test_preflight_plans_the_new_checks() -> None:
    role = "arn:aws:iam::123456789012:role/clickhouse-backup"
    aws = {"cloud": "aws", "region": "us-east-1", "cluster": "prod"}
    irsa = _profile(target=aws, postgres={"host": "db.internal"},
                    clickhouse={"backup": {"provider": "s3", "bucket": "hf-backups", "roleArn": role}})
    ids = plan_preflight(irsa, PreflightSettings()).ids
    assert {"kubernetes/node-groups", "platform/inputs", "postgres/create-database",
            "blob/backup-identity"} <= set(ids)
    keys = _profile(target=aws,
                    clickhouse={"backup": {"provider": "s3", "bucket": "hf-backups", "accessKeyId": "env:K",
                                           "secretAccessKey": "env:S"}})
    assert "blob/backup-identity" not in plan_preflight(keys, PreflightSettings()).ids
