"""Kubernetes checks against the emulated cluster: versions, node counts and sizes, classes, permissions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.checks.kubernetes import KubeTarget, kubernetes_checks, parse_version, read_cluster_secret
from hfwizard.errors import SecretError
from hfwizard.sandbox.emulator import ClusterThread


async def _run(kubeconfig: Path, **target: Any) -> dict[str, CheckResult]:
    checks = kubernetes_checks(KubeTarget(kubeconfig=str(kubeconfig), **target))
    results = await asyncio.gather(*(c.run() for c in checks))
    return {r.id: r for r in results}


async def test_a_right_sized_cluster_passes(cluster: ClusterThread, kubeconfig: Path) -> None:
    got = await _run(kubeconfig)
    assert {k: v.status for k, v in got.items()} == dict.fromkeys(got, Status.PASS), got
    assert "6 Ready, schedulable worker nodes" in got["kubernetes/nodes"].finding
    assert "v1.32.3" in got["kubernetes/version"].finding


async def test_kubernetes_1_31_fails(cluster: ClusterThread, kubeconfig: Path) -> None:
    assert cluster.cluster is not None
    cluster.cluster.version = "v1.31.4"
    got = await _run(kubeconfig)
    assert got["kubernetes/version"].status is Status.FAIL
    assert "1.31" in got["kubernetes/version"].finding and "1.32" in got["kubernetes/version"].finding


def test_version_parsing() -> None:
    assert parse_version("v1.32.3-eks-4096722") == (1, 32)
    assert parse_version("", "1", "33+") == (1, 33)
    assert parse_version("nonsense") is None


async def test_five_workers_fail(cluster: ClusterThread, kubeconfig: Path) -> None:
    cluster.call(lambda c: c.emulator.delete_object("v1", "Node", None, "worker-6"))
    got = await _run(kubeconfig)
    assert got["kubernetes/nodes"].status is Status.FAIL
    assert got["kubernetes/nodes"].finding.startswith("5 Ready, schedulable worker nodes")


async def test_control_plane_cordoned_and_not_ready_nodes_do_not_count(cluster: ClusterThread,
                                                                      kubeconfig: Path) -> None:
    async def change(c: Any) -> None:
        await c.add_node("cp-1", role="control-plane")
        await c.add_node("worker-6", ready=False)
        node = c.emulator.get_object("v1", "Node", None, "worker-5")
        node["spec"]["unschedulable"] = True
        await c.emulator.upsert(node, keep_status=True)

    cluster.call(change)
    got = await _run(kubeconfig)
    nodes = got["kubernetes/nodes"]
    assert nodes.status is Status.FAIL and nodes.finding.startswith("4 Ready")
    assert "not Ready (worker-6)" in nodes.finding and "cordoned (worker-5)" in nodes.finding
    assert "cp-1" not in nodes.finding


async def test_four_core_nodes_fail_naming_them(cluster: ClusterThread, kubeconfig: Path) -> None:
    async def shrink(c: Any) -> None:
        for name in ("worker-2", "worker-4"):
            await c.add_node(name, cpu="4", memory="16Gi")

    cluster.call(shrink)
    got = await _run(kubeconfig)
    size = got["kubernetes/node-size"]
    assert size.status is Status.FAIL
    assert "worker-2 (4 cores" in size.finding and "worker-4 (4 cores" in size.finding
    assert "worker-1" not in size.finding
    assert size.remedy


async def test_a_small_extra_node_beside_six_proper_workers_passes(cluster: ClusterThread,
                                                                   kubeconfig: Path) -> None:
    # The seed asks for at least six workers of 8-16 cores; a small system node besides is fine.
    cluster.call(lambda c: c.add_node("system-1", cpu="2", memory="4Gi"))
    got = await _run(kubeconfig)
    size = got["kubernetes/node-size"]
    assert size.status is Status.PASS, size
    assert size.finding.startswith("6 workers within") and "system-1 (2 cores" in size.finding
    assert got["kubernetes/nodes"].status is Status.PASS


async def test_five_proper_workers_and_a_small_one_fail(cluster: ClusterThread, kubeconfig: Path) -> None:
    cluster.call(lambda c: c.add_node("worker-6", cpu="2", memory="4Gi"))
    got = await _run(kubeconfig)
    assert got["kubernetes/nodes"].status is Status.PASS  # six Ready workers...
    size = got["kubernetes/node-size"]
    assert size.status is Status.FAIL  # ...but only five of the size the platform needs
    assert size.finding.startswith("5 worker nodes of at least 8 cores") and "worker-6 (2 cores" in size.finding


async def test_thirty_two_core_nodes_warn(cluster: ClusterThread, kubeconfig: Path) -> None:
    cluster.call(lambda c: c.add_node("worker-3", cpu="32", memory="128Gi"))
    got = await _run(kubeconfig)
    size = got["kubernetes/node-size"]
    assert size.status is Status.WARN and "worker-3 (32 cores" in size.finding


async def test_a_16_gib_node_with_kubelet_reservation_passes(cluster: ClusterThread, kubeconfig: Path) -> None:
    # Allocatable sits below the machine size on every real node; the floor is judged on capacity.
    cluster.call(lambda c: c.add_node("worker-1", cpu="8", memory="16Gi", allocatable_cpu="7910m",
                                      allocatable_memory="14Gi"))
    got = await _run(kubeconfig)
    assert got["kubernetes/node-size"].status is Status.PASS, got["kubernetes/node-size"]


async def test_missing_default_storage_class_fails(cluster: ClusterThread, kubeconfig: Path) -> None:
    cluster.call(lambda c: c.add_storage_class("standard", default=False))
    got = await _run(kubeconfig)
    sc = got["kubernetes/storage-class"]
    assert sc.status is Status.FAIL and "no default StorageClass" in sc.finding and "standard" in sc.finding
    # Naming a class that exists is enough.
    got = await _run(kubeconfig, storage_class="standard")
    assert got["kubernetes/storage-class"].status is Status.PASS


async def test_a_denied_permission_fails_naming_it(cluster: ClusterThread, kubeconfig: Path) -> None:
    assert cluster.cluster is not None
    cluster.cluster.denied.add(("create", "horizontalpodautoscalers"))
    cluster.cluster.denied.add(("create", "namespaces"))
    got = await _run(kubeconfig, namespace="highflame")
    perms = got["kubernetes/permissions"]
    assert perms.status is Status.FAIL
    assert "create horizontalpodautoscalers" in perms.finding and "create namespaces" in perms.finding
    # A namespace that already exists need not be created.
    cluster.call(lambda c: c.add_namespace("highflame"))
    perms = (await _run(kubeconfig, namespace="highflame"))["kubernetes/permissions"]
    assert "namespaces" not in perms.finding and "horizontalpodautoscalers" in perms.finding


async def test_ingress_class_must_exist(cluster: ClusterThread, kubeconfig: Path) -> None:
    got = await _run(kubeconfig, ingress_class="alb")
    ic = got["kubernetes/ingress-class"]
    assert ic.status is Status.FAIL and "'alb'" in ic.finding and "nginx" in ic.finding
    got = await _run(kubeconfig, ingress_class=None)
    assert got["kubernetes/ingress-class"].status is Status.FAIL  # no default class either
    got = await _run(kubeconfig, ingress_enabled=False)
    assert got["kubernetes/ingress-class"].status is Status.SKIPPED


async def test_unreachable_api_fails_once_and_skips_the_rest(tmp_path: Path, closed_port: int) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
current-context: dead
clusters: [{{name: dead, cluster: {{server: "http://127.0.0.1:{closed_port}"}}}}]
users: [{{name: dead, user: {{token: x}}}}]
contexts: [{{name: dead, context: {{cluster: dead, user: dead}}}}]
""")
    started = time.monotonic()
    got = await _run(kc, request_timeout=2)
    assert time.monotonic() - started < 5
    assert got["kubernetes/api"].status is Status.FAIL and "connection refused" in got["kubernetes/api"].finding
    assert all(r.status is Status.SKIPPED for k, r in got.items() if k != "kubernetes/api")


async def test_missing_context_is_named(kubeconfig: Path) -> None:
    got = await _run(kubeconfig, context="prod-eu")
    assert got["kubernetes/api"].status is Status.FAIL and "prod-eu" in got["kubernetes/api"].finding


def test_k8s_secret_reference_reads_from_the_namespace(cluster: ClusterThread, kubeconfig: Path) -> None:
    import base64

    async def seed(c: Any) -> None:
        await c.add_namespace("highflame")
        await c.emulator.upsert({"apiVersion": "v1", "kind": "Secret",
                                 "metadata": {"name": "clerk", "namespace": "highflame"},
                                 "data": {"secretKey": base64.b64encode(b"sk_test_fromcluster123").decode()}})

    cluster.call(seed)
    target = KubeTarget(kubeconfig=str(kubeconfig), namespace="highflame")
    assert read_cluster_secret(target, "clerk", "secretKey") == "sk_test_fromcluster123"
    with pytest.raises(SecretError, match="has no key 'other'"):
        read_cluster_secret(target, "clerk", "other")
    with pytest.raises(SecretError, match="does not exist"):
        read_cluster_secret(target, "missing", "x")
