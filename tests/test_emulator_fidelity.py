"""The emulated cluster fails where a real cluster fails (issue 12), shown with Highflame's real charts.

No real Kubernetes API server can run on these machines: every test talks to the emulator
(hfwizard.sandbox.emulator) on loopback with real clients and the embedded Helm v4.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hfwizard.engine.helm import HelmError
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.sandbox.emulator import ClusterThread

REAL_CHARTS = Path("/work/shared/highflame/charts")
CANARY = "stringdata-canary-7f3a91"


def _real_chart(name: str, tmp_path: Path) -> Path:
    archives = sorted(REAL_CHARTS.glob(f"{name}-*.tgz"))
    if not archives:
        pytest.skip(f"the real chart {name} is not on this machine ({REAL_CHARTS})")
    with tarfile.open(archives[-1]) as tar:
        tar.extractall(tmp_path / "charts", filter="data")
    return tmp_path / "charts" / name


@pytest.fixture
def stateful_cluster(tmp_path: Path) -> Iterator[ClusterThread]:
    """A seeded cluster that keeps its objects in tmp_path/state.json, as the sandbox runs it."""
    handle = ClusterThread(controllers=True, state_file=tmp_path / "state.json").start()
    try:
        handle.call(lambda c: c.seed_default())
        yield handle
    finally:
        handle.stop()


def _core(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))


def _generic_values(**extra: Any) -> dict[str, Any]:
    return {"fullnameOverride": "guard", "podDisruptionBudget": {"enabled": False}, **extra}


# ---- 1. stringData ------------------------------------------------------------------------------


def test_string_data_is_folded_into_data_and_never_stored(stateful_cluster: ClusterThread, tmp_path: Path) -> None:
    """Emulated API + real Helm and the real highflame-generic chart: its env Secret uses stringData."""
    kubeconfig = stateful_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    chart = _real_chart("highflame-generic", tmp_path)
    values = _generic_values(secrets={"enabled": True, "secretData": {"API_TOKEN": CANARY}})
    asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", values, create_namespace=True,
                                                            timeout_s=60))
    secret = _core(kubeconfig).read_namespaced_secret("guard", "hf")
    assert secret.string_data is None
    assert base64.b64decode(secret.data["API_TOKEN"]).decode() == CANARY
    # A merge patch with stringData is folded too, and wins over data's own key.
    _core(kubeconfig).patch_namespaced_secret("guard", "hf", {"stringData": {"API_TOKEN": CANARY + "-2"}})
    patched = _core(kubeconfig).read_namespaced_secret("guard", "hf")
    assert patched.string_data is None and base64.b64decode(patched.data["API_TOKEN"]).decode() == CANARY + "-2"
    state = (tmp_path / "state.json").read_bytes()
    assert CANARY.encode() not in state and b"stringData" not in state


def test_string_data_on_create_and_replace(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API with the kubernetes client: POST and PUT fold stringData the same way."""
    core = _core(kubeconfig)
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "data": {"a": "eA=="},
                                              "stringData": {"b": "plain"}})
    created = core.read_namespaced_secret("s", "default")
    assert created.data == {"a": "eA==", "b": "cGxhaW4="} and created.string_data is None
    created.string_data = {"a": "y"}
    core.replace_namespaced_secret("s", "default", created)
    assert core.read_namespaced_secret("s", "default").data == {"a": "eQ==", "b": "cGxhaW4="}


# ---- 2. kinds the cluster does not serve ----------------------------------------------------------


def test_an_unserved_kind_is_named_in_the_error(cluster: ClusterThread, kubeconfig: Path, tmp_path: Path) -> None:
    """Emulated API + real Helm: GKE's ManagedCertificate on a cluster without that CRD fails naming the kind."""
    chart = _real_chart("highflame-generic", tmp_path)
    values = _generic_values(gceIngress={"managedCertificate": {"enabled": True, "domains": ["a.example.com"]}})
    with pytest.raises(HelmError) as caught:
        asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", values,
                                                                create_namespace=True, timeout_s=30))
    message = str(caught.value)
    assert 'no matches for kind "ManagedCertificate" in version "networking.gke.io/v1"' in message, message
    # Without the GKE object the same chart installs.
    asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", _generic_values(),
                                                            create_namespace=True, timeout_s=30))


# ---- 3. seeding: nothing a real cluster lacks, and never half done ---------------------------------


def _emulator(state: Path, kubeconfig: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hfwizard.sandbox.emulator", "--state", str(state), "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )


def test_a_kill_while_seeding_leaves_no_half_seeded_cluster(tmp_path: Path) -> None:
    """`python -m hfwizard.sandbox.emulator` killed (SIGKILL) halfway through seeding, then started again."""
    state, kubeconfig = tmp_path / "state.json", tmp_path / "kubeconfig"
    killed = _emulator(state, kubeconfig, HFWIZARD_TEST_KILL_AT="emulator-seed")
    assert killed.wait(20) == -signal.SIGKILL
    saved = json.loads(state.read_text())
    assert not saved["seeded"] and not [o for o in saved["objects"] if o["object"]["kind"] == "Node"]
    proc = _emulator(state, kubeconfig)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "ready"  # type: ignore[union-attr]
        api = config.new_client_from_config(str(kubeconfig))
        nodes = client.CoreV1Api(api).list_node().items
        assert len(nodes) == 6 and all(n.metadata.labels["kube/nodegroup"] == "general" for n in nodes)
        assert [c.metadata.name for c in client.StorageV1Api(api).list_storage_class().items] == ["standard"]
        assert client.NetworkingV1Api(api).list_ingress_class().items == []  # no controller installed
    finally:
        proc.terminate()
        proc.wait(10)
    assert json.loads(state.read_text())["seeded"] is True


def test_a_partial_seed_from_an_older_state_file_is_redone(tmp_path: Path) -> None:
    """A state file with 3 of 6 nodes and no StorageClass (what the old seeding left after a kill)."""
    state, kubeconfig = tmp_path / "state.json", tmp_path / "kubeconfig"
    nodes = [{"resource": "/v1/nodes", "object": {"apiVersion": "v1", "kind": "Node",
                                                   "metadata": {"name": f"worker-{i}", "resourceVersion": "2"}}}
             for i in (1, 2, 3)]
    state.write_text(json.dumps({"resourceVersion": 5, "crds": [], "objects": nodes}))
    proc = _emulator(state, kubeconfig)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "ready"  # type: ignore[union-attr]
        api = config.new_client_from_config(str(kubeconfig))
        assert len(client.CoreV1Api(api).list_node().items) == 6
        assert len(client.StorageV1Api(api).list_storage_class().items) == 1
    finally:
        proc.terminate()
        proc.wait(10)
