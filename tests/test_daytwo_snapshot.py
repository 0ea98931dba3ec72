"""The upgrade's snapshot and the Secrets half of its rollback, against the emulated API (kmock plus our
shim; no real API server runs here): ownership comes from the plan, not from a label, so a Secret the
plan writes is kept whatever its labels and in whichever namespace, one it would create is removed, and
each goes back exactly as it was (type, data, labels)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from kubernetes import client, config

from hfwizard.daytwo.upgrade import SNAPSHOT, plan_secrets, read_snapshot, roll_back, take_snapshot
from hfwizard.engine.kube import Kube
from hfwizard.engine.plan import Plan, Step, StepKind
from hfwizard.platform.secretspec import SecretEntry, SecretSpec
from hfwizard.sandbox.emulator import ClusterThread

NS, OTHER = "highflame", "clickhouse"


def _spec(name: str) -> SecretSpec:
    return SecretSpec(name, "test", {"k": SecretEntry(ref="env:UNUSED")})


def _secret(name: str, value: str, labels: dict[str, str] | None = None, type_: str = "Opaque") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "type": type_,
            "data": {"k": base64.b64encode(value.encode()).decode()}}


def _text(core: client.CoreV1Api, ns: str, name: str) -> str:
    return base64.b64decode(core.read_namespaced_secret(name, ns).data["k"]).decode()


class _NoHelm:
    """No release moved in this test: the rollback must not ask Helm anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Helm was asked to {name}")


def test_snapshot_follows_the_plan_and_the_rollback_puts_each_secret_back(cluster: ClusterThread,
                                                                          kubeconfig: Path) -> None:
    for ns in (NS, OTHER):
        cluster.call(lambda c, ns=ns: c.add_namespace(ns))
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    ours = {"app.kubernetes.io/managed-by": "hfwizard"}
    core.create_namespaced_secret(NS, _secret("labelled-env", "old-1", ours))
    core.create_namespaced_secret(NS, _secret("unlabelled-env", "old-2", {"team": "payments"}))
    core.create_namespaced_secret(OTHER, _secret("elsewhere", "old-3", ours))
    core.create_namespaced_secret(NS, _secret("customer", "theirs"))  # neither labelled nor in the plan
    plan = Plan(NS, (
        Step("secrets", "Secrets", StepKind.SECRETS, secrets=(_spec("unlabelled-env"), _spec("brand-new-env"))),
        Step(f"secrets/{OTHER}", "Secrets", StepKind.SECRETS, secrets=(_spec("elsewhere"),), namespace=OTHER)))
    assert plan_secrets(plan) == [(NS, "unlabelled-env"), (NS, "brand-new-env"), (OTHER, "elsewhere")]
    kube = Kube(api)

    snap, new = take_snapshot(kube, NS, [], plan_secrets(plan))
    assert new and read_snapshot(kube, NS) == snap
    assert set(snap.secrets) == {f"{NS}/labelled-env", f"{NS}/unlabelled-env", f"{OTHER}/elsewhere"}
    assert snap.created == [f"{NS}/brand-new-env"] and snap.added == []
    again, new = take_snapshot(kube, NS, [], plan_secrets(plan))
    assert not new and again == snap, "a resumed upgrade keeps the first snapshot"

    # What the upgrade did: new content everywhere, a Secret created, one removed, one label dropped.
    core.replace_namespaced_secret("labelled-env", NS, _secret("labelled-env", "new-1", ours))
    core.replace_namespaced_secret("unlabelled-env", NS, _secret("unlabelled-env", "new-2"))
    core.delete_namespaced_secret("elsewhere", OTHER)
    core.create_namespaced_secret(NS, _secret("brand-new-env", "new-4", ours))
    core.replace_namespaced_secret("customer", NS, _secret("customer", "theirs-changed"))
    lines: list[str] = []
    outcome = asyncio.run(roll_back(kube, _NoHelm(), NS, snap, timeout_s=10, log=lines.append))  # type: ignore[arg-type]

    assert outcome.failed == [] and outcome.rolled == [] and outcome.removed == []
    assert (_text(core, NS, "labelled-env"), _text(core, NS, "unlabelled-env"), _text(core, OTHER, "elsewhere")) == (
        "old-1", "old-2", "old-3")
    assert core.read_namespaced_secret("unlabelled-env", NS).metadata.labels == {"team": "payments"}, (
        "back as it was: its labels too, and no label of ours added")
    names = {s.metadata.name for s in core.list_namespaced_secret(NS).items}
    assert "brand-new-env" not in names, "the Secret the upgrade created is removed"
    assert _text(core, NS, "customer") == "theirs-changed", "a Secret hfwizard does not own is never touched"
    assert SNAPSHOT in names, "the snapshot is dropped by the run, once the rollback succeeded"
    assert lines == [f"Secret {NS}/labelled-env: previous content put back",
                     f"Secret {NS}/unlabelled-env: previous content put back",
                     f"Secret {OTHER}/elsewhere: previous content put back",
                     f"Secret {NS}/brand-new-env: removed (this upgrade created it)"]
