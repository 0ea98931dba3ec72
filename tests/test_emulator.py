"""The emulated Kubernetes API (kmock + our shim) and the controller player.

No real Kubernetes API server can run on these machines, so every test here talks to the emulator
on loopback with real clients (the kubernetes Python client, raw HTTP).
"""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config

from hfwizard.sandbox.emulator import ClusterThread, decode_protobuf
from hfwizard.sandbox.emulator.state import StateFile, load_state, read_state
from hfwizard.sandbox.emulator.store import Store
from tests.fixtures.cluster import EmulatorProcess


def _api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(str(kubeconfig))


def _http(
    url: str, method: str = "GET", body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_seeded_cluster_as_the_kubernetes_client_sees_it(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server can run here): version, nodes, classes."""
    api = _api(kubeconfig)
    assert client.VersionApi(api).get_code().git_version == "v1.32.3"
    nodes = client.CoreV1Api(api).list_node().items
    assert len(nodes) == 6
    node = nodes[0]
    assert node.status.capacity == {"cpu": "8", "memory": "32Gi", "pods": "110"}
    assert node.status.node_info.kubelet_version == "v1.32.3"
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]
    classes = client.StorageV1Api(api).list_storage_class().items
    assert classes[0].metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert client.NetworkingV1Api(api).read_ingress_class("nginx").spec.controller == "k8s.io/ingress-nginx"  # fixture
    assert node.metadata.labels["kube/nodegroup"] == "general"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600


def test_discovery_lists_and_watch_content_type(cluster: ClusterThread) -> None:
    """Emulated API (kmock + our shim; no real API server here): the five fixes kmock needs."""
    status, _, body = _http(f"{cluster.url}/api/v1")
    assert status == 200 and json.loads(body)["groupVersion"] == "v1"
    status, _, body = _http(f"{cluster.url}/api/v1/nodes")
    listing = json.loads(body)
    assert listing["kind"] == "NodeList" and listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) > 0
    status, headers, _ = _http(
        f"{cluster.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1"
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")


def _pb_field(number: int, payload: bytes) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _protobuf_secret(name: str) -> bytes:
    # As client-go sends it: empty strings in ObjectMeta, including namespace.
    meta = (
        _pb_field(1, name.encode())
        + _pb_field(2, b"")
        + _pb_field(3, b"")
        + _pb_field(11, _pb_field(1, b"owner") + _pb_field(2, b"helm"))
    )
    secret = (
        _pb_field(1, meta)
        + _pb_field(2, _pb_field(1, b"release") + _pb_field(2, b"\x00\x01binary"))
        + _pb_field(3, b"helm.sh/release.v1")
    )
    type_meta = _pb_field(1, b"v1") + _pb_field(2, b"Secret")
    return b"k8s\x00" + _pb_field(1, type_meta) + _pb_field(2, secret)


def test_protobuf_secret_lands_in_the_right_namespace(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server here): client-go's protobuf bodies decode."""
    body = _protobuf_secret("release-record")
    assert decode_protobuf(body)["metadata"] == {"name": "release-record", "labels": {"owner": "helm"}}
    cluster.call(lambda c: c.add_namespace("apps"))
    status, _, _ = _http(
        f"{cluster.url}/api/v1/namespaces/apps/secrets", "POST", body, "application/vnd.kubernetes.protobuf"
    )
    assert status == 201
    secret = client.CoreV1Api(_api(kubeconfig)).read_namespaced_secret("release-record", "apps")
    assert secret.metadata.namespace == "apps"
    assert secret.type == "helm.sh/release.v1"
    assert secret.data["release"] == "AAFiaW5hcnk="  # base64 of the binary value, unchanged


def test_lease_update_with_stale_resource_version_conflicts(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server here): Leases as the engine's lock."""
    leases = client.CoordinationV1Api(_api(kubeconfig))
    body = {
        "metadata": {"name": "hfwizard-lock"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30},
    }
    leases.create_namespaced_lease("default", body)
    mine = leases.read_namespaced_lease("hfwizard-lock", "default")
    theirs = leases.read_namespaced_lease("hfwizard-lock", "default")
    mine.spec.holder_identity = "b"
    leases.replace_namespaced_lease("hfwizard-lock", "default", mine)
    theirs.spec.holder_identity = "c"
    with pytest.raises(client.ApiException) as caught:
        leases.replace_namespaced_lease("hfwizard-lock", "default", theirs)
    assert caught.value.status == 409
    with pytest.raises(client.ApiException) as again:
        leases.create_namespaced_lease("default", body)
    assert again.value.status == 409 and json.loads(again.value.body)["reason"] == "AlreadyExists"


def test_self_subject_access_review_deny_list(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server here): RBAC preflight answers."""
    assert cluster.cluster is not None
    cluster.cluster.denied.add(("create", "clusterroles"))
    authz = client.AuthorizationV1Api(_api(kubeconfig))

    def allowed(verb: str, resource: str) -> bool:
        review = {"spec": {"resourceAttributes": {"verb": verb, "resource": resource}}}
        return bool(authz.create_self_subject_access_review(review).status.allowed)

    assert allowed("create", "deployments")
    assert not allowed("create", "clusterroles")


def test_controller_player_makes_workloads_ready_or_failing(cluster: ClusterThread, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server here): the controller player's effects."""
    assert cluster.controllers is not None
    cluster.controllers.fail("broken")
    apps = client.AppsV1Api(_api(kubeconfig))
    core = client.CoreV1Api(_api(kubeconfig))
    for name in ("good", "broken"):
        apps.create_namespaced_deployment(
            "default",
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "x"}]},
                    },
                },
            },
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        good = apps.read_namespaced_deployment_status("good", "default").status
        if good.ready_replicas == 2:
            break
        time.sleep(0.05)
    assert good.ready_replicas == 2 and good.observed_generation == 1
    pods = core.list_namespaced_pod("default", label_selector="app=good").items
    assert sorted(p.metadata.name for p in pods) == ["good-0", "good-1"]
    assert all(p.status.phase == "Running" for p in pods)
    broken = apps.read_namespaced_deployment_status("broken", "default").status
    assert not broken.ready_replicas
    crashing = core.read_namespaced_pod("broken-0", "default").status.container_statuses[0]
    assert crashing.state.waiting.reason == "CrashLoopBackOff"
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=broken-0").items
    assert events and events[0].type == "Warning"
    apps.delete_namespaced_deployment("good", "default")
    assert not core.list_namespaced_pod("default", label_selector="app=good").items


def test_state_survives_sigkill_of_the_emulator_process(emulator_process: EmulatorProcess) -> None:
    """Emulated API (kmock + our shim; no real API server here) in its own process, killed and restarted."""
    emulator_process.start()
    core = client.CoreV1Api(_api(emulator_process.kubeconfig))
    core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    before = core.read_namespaced_config_map("kept", "default").metadata.resource_version
    emulator_process.kill()
    assert stat.S_IMODE(emulator_process.state.stat().st_mode) == 0o600
    log = emulator_process.state.with_name(emulator_process.state.name + ".log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # the ConfigMap's write is there, not in the snapshot
    emulator_process.start()  # same state file, same port: the kubeconfig still points at it
    core = client.CoreV1Api(_api(emulator_process.kubeconfig))
    kept = core.read_namespaced_config_map("kept", "default")
    assert kept.data == {"k": "v"} and kept.metadata.resource_version == before
    assert len(core.list_node().items) == 6  # seeded once, not again on restart
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    after = core.read_namespaced_config_map("after", "default").metadata.resource_version
    assert int(after) > int(before)


# ---- the state file: snapshot + log of writes ----------------------------------------------------


def _config_map(name: str, value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"k": value}}


def _store_with_log(path: Path) -> tuple[Store, StateFile]:
    log = StateFile(path)
    store = Store(state_file=path, on_write=log, strict_namespaces=False)
    return store, log


def test_writes_since_the_snapshot_come_back_from_the_log_and_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store, log = _store_with_log(path)
    store.upsert_locked(_config_map("first", "1"))
    store.saved()  # the first write also writes the snapshot
    assert path.exists() and not log.log.read_bytes()
    store.upsert_locked(_config_map("second", "2"))
    store.saved()
    store.upsert_locked(_config_map("first", "1b"))
    info = store.resource_type("v1", "ConfigMap")
    second = store.get(info, "default", "second")
    assert second is not None
    store.remove(info, second)
    store.saved()  # one transaction: an update and a delete
    with open(log.log, "ab") as handle:
        handle.write(b'{"rv": 99, "put": [["/v1/configmaps", "default", "torn"')  # killed mid-append
    reloaded, _ = _store_with_log(path)
    assert load_state(reloaded)
    names = {o["metadata"]["name"]: o["data"]["k"] for o in reloaded.list_objects("v1", "ConfigMap", "default")}
    assert names == {"first": "1b"}
    assert reloaded.rv == store.rv


def test_a_log_older_than_the_snapshot_is_not_replayed(tmp_path: Path) -> None:
    """A kill between the snapshot's rename and the log's truncation leaves both: the log's entries are
    already in the snapshot and must not bring back older versions of its objects."""
    path = tmp_path / "state.json"
    store, log = _store_with_log(path)
    store.upsert_locked(_config_map("cm", "old"))
    store.saved()
    store.upsert_locked(_config_map("cm", "new"))
    store.saved()
    stale_log = log.log.read_bytes()
    assert b"new" in stale_log
    store.upsert_locked(_config_map("cm", "newest"))
    log.fold(store)  # snapshot at "newest"; then put the old log back, as if the truncation never ran
    log.log.write_bytes(stale_log)
    reloaded, _ = _store_with_log(path)
    load_state(reloaded)
    assert reloaded.get_object("v1", "ConfigMap", "default", "cm")["data"] == {"k": "newest"}  # type: ignore[index]
    assert read_state(path)["objects"][0]["object"]["data"] == {"k": "newest"}


def test_closing_folds_the_log_into_one_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store, log = _store_with_log(path)
    for index in range(5):
        store.upsert_locked(_config_map(f"cm-{index}", str(index)))
        store.saved()
    assert log.log.stat().st_size > 0
    log.close(store)
    assert not log.log.exists()
    assert len(json.loads(path.read_text())["objects"]) == 5
