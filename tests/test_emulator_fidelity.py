"""The emulated cluster fails where a real cluster fails (issue 12), shown with Highflame's real charts.

No real Kubernetes API server can run on these machines: every test talks to the emulator
(hfwizard.sandbox.emulator) on loopback with real clients and the embedded Helm v4.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from hfwizard.engine.helm import HelmError, HelmTimeout
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.emulator.state import read_state
from tests import platform_support

REAL_CHARTS = platform_support.CHARTS
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
    files = [tmp_path / "state.json", tmp_path / "state.json.log"]  # the snapshot and the log of writes since
    assert not [f for f in files if CANARY.encode() in f.read_bytes()]
    secrets = [o["object"] for o in read_state(tmp_path / "state.json")["objects"] if o["object"]["kind"] == "Secret"]
    assert secrets and not [s for s in secrets if "stringData" in s]


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


# ---- 4. scheduling that judges -------------------------------------------------------------------

IAC = platform_support.IAC
NOT_MATCHING = (
    "0/6 nodes are available: 6 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
)


def _guard_values(cloud: str = "EKS") -> dict[str, Any]:
    """The real guard values for `cloud` (placeholders filled): nodeSelector kube/nodegroup gpu,
    3.5 cores / 15Gi, the pull secret highflame-registry-secret."""
    path = IAC / cloud / "highflame-guard-helm-values-tmpl.yml"
    if not path.exists():
        pytest.skip(f"the real values {path} are not on this machine")
    text = path.read_text().replace("${DOCKER_IMAGE}", "ghcr.io/highflame-ai/guard").replace("${IMAGE_TAG}", "1.0")
    return dict(yaml.safe_load(text), podDisruptionBudget={"enabled": False})


def _events(kubeconfig: Path, namespace: str, reason: str) -> list[str]:
    items = _core(kubeconfig).list_namespaced_event(namespace).items
    return [e.message for e in items if e.reason == reason and e.type == "Warning"]


def _install_stalls(
    kubeconfig: Path, chart: Path, values: dict[str, Any], namespace: str = "hf", release: str = "guard"
) -> None:
    with pytest.raises(HelmTimeout):
        asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade(release, chart, namespace, values,
                                                                create_namespace=True, timeout_s=3))


def test_guard_asking_for_gpu_nodes_stays_pending_on_general_nodes(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    """Emulated API + real Helm, real chart and real EKS guard values: no node carries kube/nodegroup gpu."""
    chart = _real_chart("highflame-generic", tmp_path)
    _install_stalls(kubeconfig, chart, _guard_values())
    pods = _core(kubeconfig).list_namespaced_pod("hf").items
    assert pods and all(p.status.phase == "Pending" and not p.spec.node_name for p in pods)
    scheduled = next(c for c in pods[0].status.conditions if c.type == "PodScheduled")
    assert (scheduled.status, scheduled.reason, scheduled.message) == ("False", "Unschedulable", NOT_MATCHING)
    assert NOT_MATCHING in _events(kubeconfig, "hf", "FailedScheduling")
    apps = client.AppsV1Api(config.new_client_from_config(str(kubeconfig)))
    assert not apps.read_namespaced_deployment_status("highflame-guard", "hf").status.ready_replicas


def test_tainted_gpu_nodes_need_a_toleration(tmp_path: Path) -> None:
    """GPU node group tainted nvidia.com/gpu: the real values lack the toleration; with it the guard runs."""
    chart = _real_chart("highflame-generic", tmp_path)
    with ClusterThread(controllers=True) as handle:
        handle.call(lambda c: c.seed_default(cloud="eks", gpu_nodes=2))
        kubeconfig = handle.write_kubeconfig(tmp_path / "kubeconfig")
        _install_stalls(kubeconfig, chart, _guard_values())
        assert (
            "0/8 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, "
            "6 node(s) didn't match Pod's node affinity/selector. preemption: 0/8 nodes are available: "
            "8 Preemption is not helpful for scheduling."
        ) in _events(kubeconfig, "hf", "FailedScheduling")
        tolerant = dict(_guard_values(), tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}])
        done = asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", tolerant, timeout_s=30))
        assert done.status == "deployed"
        pod = _core(kubeconfig).list_namespaced_pod("hf").items[0]
        assert pod.spec.node_name.startswith("gpu-") and pod.status.phase == "Running"
        node = _core(kubeconfig).read_node(pod.spec.node_name)
        assert node.metadata.labels["eks.amazonaws.com/nodegroup"] == "gpu"


def test_requests_beyond_a_node_are_insufficient(cluster: ClusterThread, kubeconfig: Path, tmp_path: Path) -> None:
    """Requests are judged against allocatable minus what scheduled pods already asked for."""
    chart = _real_chart("highflame-generic", tmp_path)
    big = _generic_values(resources={"requests": {"cpu": "9", "memory": "1Gi"}})
    _install_stalls(kubeconfig, chart, big)
    assert (
        "0/6 nodes are available: 6 Insufficient cpu. preemption: 0/6 nodes are available: "
        "6 No preemption victims found for incoming pod."
    ) in _events(kubeconfig, "hf", "FailedScheduling")
    # 6 replicas of 5 cores fill each 8-core node; a 7th finds no room.
    five = _generic_values(replicaCount=7, resources={"requests": {"cpu": "5", "memory": "1Gi"}})
    _install_stalls(kubeconfig, chart, five, namespace="other")
    pods = _core(kubeconfig).list_namespaced_pod("other").items
    assert sorted(bool(p.spec.node_name) for p in pods) == [False, True, True, True, True, True, True]
    assert len({p.spec.node_name for p in pods if p.spec.node_name}) == 6


# ---- 5. a kubelet that checks ---------------------------------------------------------------------


def _wait_ready(kubeconfig: Path, namespace: str, name: str, timeout: float = 10) -> None:
    apps = client.AppsV1Api(config.new_client_from_config(str(kubeconfig)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment_status(name, namespace).status
        if status.ready_replicas and status.ready_replicas == status.replicas:
            return
        time.sleep(0.1)
    raise AssertionError(f"deployment {namespace}/{name} never turned ready")


def _waiting(kubeconfig: Path, namespace: str) -> list[tuple[str, str]]:
    pods = _core(kubeconfig).list_namespaced_pod(namespace).items
    return [(s.state.waiting.reason, s.state.waiting.message or "")
            for p in pods for s in p.status.container_statuses or [] if s.state.waiting]


def test_a_missing_secret_volume_holds_the_pod_until_the_secret_appears(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    """Real chart with a license Secret volume that does not exist: ContainerCreating + FailedMount."""
    chart = _real_chart("highflame-generic", tmp_path)
    values = _generic_values(volumes=[{"name": "license", "secret": {"secretName": "highflame-license"}}])
    _install_stalls(kubeconfig, chart, values)
    assert _waiting(kubeconfig, "hf") == [("ContainerCreating", "")]
    assert ('MountVolume.SetUp failed for volume "license" : secret "highflame-license" not found'
            in _events(kubeconfig, "hf", "FailedMount"))
    _core(kubeconfig).create_namespaced_secret("hf", {"metadata": {"name": "highflame-license"},
                                                      "stringData": {"license": "x"}})
    _wait_ready(kubeconfig, "hf", "guard")  # the kubelet retries: the pod starts once the Secret exists


def test_a_missing_env_source_is_a_create_container_config_error(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    chart = _real_chart("highflame-generic", tmp_path)
    values = _generic_values(additionalEnvFrom={"enabled": True, "items": [{"secretRef": {"name": "shared-env"}}]})
    _install_stalls(kubeconfig, chart, values)
    assert _waiting(kubeconfig, "hf") == [("CreateContainerConfigError", 'secret "shared-env" not found')]
    assert 'Error: secret "shared-env" not found' in _events(kubeconfig, "hf", "Failed")
    optional = _generic_values(additionalEnvFrom={"enabled": True, "items": [
        {"secretRef": {"name": "shared-env", "optional": True}}]})
    asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", optional, timeout_s=30))


def test_a_missing_pull_secret_warns_and_an_unreachable_registry_fails_the_pull(tmp_path: Path) -> None:
    chart = _real_chart("highflame-generic", tmp_path)
    with ClusterThread(controllers=True, unreachable_registries=frozenset({"ghcr.io"})) as handle:
        handle.call(lambda c: c.seed_default())
        kubeconfig = handle.write_kubeconfig(tmp_path / "kubeconfig")
        values = _generic_values(imagePullSecrets=[{"name": "highflame-registry-secret"}])
        _install_stalls(kubeconfig, chart, values)
        assert ("Unable to retrieve some image pull secrets (highflame-registry-secret); attempting to pull "
                "the image may not succeed.") in _events(kubeconfig, "hf", "FailedToRetrieveImagePullSecret")
        [(reason, message)] = _waiting(kubeconfig, "hf")
        assert reason == "ErrImagePull" and "lookup ghcr.io: no such host" in message
        mirrored = dict(values, image={"repository": "registry.internal.example/guard", "tag": "1"})
        done = asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", mirrored, timeout_s=30))
        assert done.status == "deployed"  # the pull secret is still missing: a warning, not a stop


# ---- 6. server-side apply with managed fields ------------------------------------------------------

_VOLATILE = {"resourceVersion", "generation", "managedFields", "uid", "creationTimestamp"}


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in _VOLATILE}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def test_upgrade_removes_dropped_fields_and_rollback_restores_exactly(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    """Real Helm (server-side apply) and the real chart: fields a revision stops setting are gone."""
    chart = _real_chart("highflame-generic", tmp_path)
    helm = EmbeddedHelm(kubeconfig)
    first = _generic_values(nodeSelector={"kube/nodegroup": "general"}, workloadAnnotations={"team": "guard"})
    asyncio.run(helm.install_or_upgrade("guard", chart, "hf", first, create_namespace=True, timeout_s=30))
    assert cluster.cluster is not None
    store = cluster.cluster.store
    rev1 = store.get_object("apps/v1", "Deployment", "hf", "guard")
    assert rev1 is not None and rev1["spec"]["template"]["spec"]["nodeSelector"] == {"kube/nodegroup": "general"}
    asyncio.run(helm.install_or_upgrade("guard", chart, "hf", _generic_values(), timeout_s=30))
    rev2 = store.get_object("apps/v1", "Deployment", "hf", "guard")
    assert rev2 is not None
    assert "nodeSelector" not in rev2["spec"]["template"]["spec"]
    assert "team" not in (rev2["metadata"].get("annotations") or {})
    asyncio.run(helm.rollback("guard", "hf", 1, timeout_s=30))
    rolled = store.get_object("apps/v1", "Deployment", "hf", "guard")
    assert rolled is not None and _spec_of(rolled) == _spec_of(rev1)


def _apply(url: str, manager: str, body: dict[str, Any], force: bool = False) -> tuple[int, dict[str, Any]]:
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    request = urllib.request.Request(
        f"{url}/apis/apps/v1/namespaces/default/deployments/web{query}", data=json.dumps(body).encode(),
        method="PATCH", headers={"Content-Type": "application/apply-patch+yaml"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_another_managers_field_conflicts_unless_forced(cluster: ClusterThread) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    assert _apply(cluster.url, "helm", deployment)[0] == 201
    status, answer = _apply(cluster.url, "kubectl", {"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "metadata": {"name": "web"}, "spec": {"replicas": 5}})
    assert status == 409 and answer["reason"] == "Conflict"
    assert answer["message"] == 'Apply failed with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas'
    status, answer = _apply(cluster.url, "kubectl", {"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "metadata": {"name": "web"}, "spec": {"replicas": 5}}, force=True)
    assert status == 200 and answer["spec"]["replicas"] == 5
    managers = {e["manager"]: e for e in answer["metadata"]["managedFields"]}
    assert "f:replicas" in managers["kubectl"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in managers["helm"]["fieldsV1"]["f:spec"]
    # helm applies again without replicas: kubectl's value stays (helm no longer owns it).
    without = {k: v for k, v in deployment["spec"].items() if k != "replicas"}
    status, answer = _apply(cluster.url, "helm", {**deployment, "spec": without})
    assert status == 200 and answer["spec"]["replicas"] == 5


# ---- 7. cloud kinds, load balancers, autoscalers, defaults -----------------------------------------


def _iac_values(cloud: str, service: str) -> dict[str, Any]:
    path = IAC / cloud / f"highflame-{service}-helm-values-tmpl.yml"
    if not path.exists():
        pytest.skip(f"the real values {path} are not on this machine")
    text = re.sub(r"\$\{[A-Z_]+\}", "placeholder", path.read_text())
    text = text.replace("placeholder\n", "ghcr.io/highflame-ai/admin\n", 1)
    return dict(yaml.safe_load(text), podDisruptionBudget={"enabled": False})


def test_gke_values_need_a_gke_cluster_and_the_autoscaler_sets_min_replicas(tmp_path: Path) -> None:
    """Real GKE admin values (BackendConfig, HPA min 2, nodegroup general) into a GKE-like cluster."""
    chart = _real_chart("highflame-generic", tmp_path)
    values = _iac_values("GKE", "admin")
    with ClusterThread(controllers=True) as plain_cluster:
        plain_cluster.call(lambda c: c.seed_default(cloud="eks"))
        kubeconfig = plain_cluster.write_kubeconfig(tmp_path / "eks")
        missing = 'no matches for kind "BackendConfig" in version "cloud.google.com/v1"'
        with pytest.raises(HelmError, match=re.escape(missing)):
            asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("admin", chart, "hf", values,
                                                                    create_namespace=True, timeout_s=30))
    with ClusterThread(controllers=True) as gke:
        gke.call(lambda c: c.seed_default(cloud="gke"))
        kubeconfig = gke.write_kubeconfig(tmp_path / "gke")
        # The real values mount the license Secret (volume license-volume): without it the pods wait.
        _install_stalls(kubeconfig, chart, values, release="admin")
        assert ('MountVolume.SetUp failed for volume "license-volume" : secret "highflame-license" not found'
                in _events(kubeconfig, "hf", "FailedMount"))
        core = _core(kubeconfig)
        for volume in values.get("volumes") or []:  # the license, the Redis certificate...
            if "secret" in volume:
                core.create_namespaced_secret("hf", {"metadata": {"name": volume["secret"]["secretName"]}})
            if "configMap" in volume:
                core.create_namespaced_config_map("hf", {"metadata": {"name": volume["configMap"]["name"]}})
        done = asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("admin", chart, "hf", values,
                                                                       create_namespace=True, timeout_s=30))
        assert done.status == "deployed"
        assert gke.cluster is not None
        store = gke.cluster.store
        assert store.list_objects("cloud.google.com/v1", "BackendConfig", "hf")
        deployment = store.get_object("apps/v1", "Deployment", "hf", "highflame-admin")
        assert deployment is not None and deployment["spec"]["replicas"] == 2  # raised by the HPA from 1
        assert deployment["status"]["readyReplicas"] == 2
        node = _core(kubeconfig).list_node().items[0]
        assert node.metadata.labels["cloud.google.com/gke-nodepool"] == "general"


@pytest.mark.parametrize(("cloud", "field"), [("eks", "hostname"), ("gke", "ip"), ("aks", "ip")])
def test_load_balancer_services_get_an_address(cloud: str, field: str, tmp_path: Path) -> None:
    chart = _real_chart("highflame-generic", tmp_path)
    with ClusterThread(controllers=True) as handle:
        handle.call(lambda c: c.seed_default(cloud=cloud))
        kubeconfig = handle.write_kubeconfig(tmp_path / "kubeconfig")
        values = _generic_values(service={"type": "LoadBalancer", "port": 8000, "protocol": "TCP"})
        asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", values,
                                                                create_namespace=True, timeout_s=30))
        service = _core(kubeconfig).read_namespaced_service("guard", "hf")
        [ingress] = service.status.load_balancer.ingress
        assert getattr(ingress, field)
        assert 30000 <= service.spec.ports[0].node_port <= 32767


def test_defaults_as_the_api_server_sets_them(cluster: ClusterThread, kubeconfig: Path) -> None:
    apps = client.AppsV1Api(config.new_client_from_config(str(kubeconfig)))
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}})
    spec = apps.read_namespaced_deployment("d", "default").spec
    assert spec.replicas == 1 and spec.strategy.rolling_update.max_surge == "25%"
    assert spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    core = _core(kubeconfig)
    ports = set()
    for name in ("one", "two"):
        core.create_namespaced_service("default", {"metadata": {"name": name}, "spec": {
            "type": "NodePort", "ports": [{"port": 80}], "selector": {"a": "b"}}})
        port = core.read_namespaced_service(name, "default").spec.ports[0]
        assert port.protocol == "TCP" and port.target_port == 80
        ports.add(port.node_port)
    assert len(ports) == 2 and all(30000 <= p <= 32767 for p in ports)


# ---- 8. field validation -----------------------------------------------------------------------------


def _post(url: str, path: str, body: dict[str, Any], query: str = "?fieldValidation=Strict") -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}{path}{query}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_typo_in_values_fails_the_apply_naming_the_field(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    """Real Helm (server-side apply) and the real chart: a probe with `initialDelaySecond` is refused."""
    chart = _real_chart("highflame-generic", tmp_path)
    typo = _generic_values(livenessProbe={"httpGet": {"path": "/livez", "port": 8000}, "initialDelaySecond": 15})
    with pytest.raises(HelmError) as caught:
        asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", typo, create_namespace=True,
                                                                timeout_s=30))
    assert ('.spec.template.spec.containers[name="highflame-generic"].livenessProbe.initialDelaySecond: '
            "field not declared in schema") in str(caught.value)
    fixed = _generic_values(livenessProbe={"httpGet": {"path": "/livez", "port": 8000}, "initialDelaySeconds": 15})
    asyncio.run(EmbeddedHelm(kubeconfig).install_or_upgrade("guard", chart, "hf", fixed, timeout_s=30))


def test_strict_decoding_for_built_in_and_custom_kinds(cluster: ClusterThread) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicaz": 2, "selector": {"matchLabels": {"a": "b"}}, "template": {
                      "metadata": {"labels": {"a": "b"}},
                      "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolice": "Always"}]}}}}
    status, answer = _post(cluster.url, "/apis/apps/v1/namespaces/default/deployments", deployment)
    assert status == 400 and answer["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicaz", unknown field "spec.template.spec.containers[0].imagePullPolice"')
    status, answer = _post(cluster.url, "/apis/apps/v1/namespaces/default/deployments", deployment, query="")
    assert status == 201 and "replicaz" not in answer["spec"]  # without Strict: dropped, as the decoder does
    assert "imagePullPolice" not in answer["spec"]["template"]["spec"]["containers"][0]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "certs.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Cert", "plural": "certs", "singular": "cert"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "domains": {"type": "array", "items": {"type": "string"}}}}}}}}]}}
    assert _post(cluster.url, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    cert = {"apiVersion": "example.com/v1", "kind": "Cert", "metadata": {"name": "c"}, "spec": {"domainz": ["a"]}}
    status, answer = _post(cluster.url, "/apis/example.com/v1/namespaces/default/certs", cert)
    assert status == 400 and 'unknown field "spec.domainz"' in answer["message"]
    cert["spec"] = {"domains": ["a"]}
    assert _post(cluster.url, "/apis/example.com/v1/namespaces/default/certs", cert)[0] == 201
