"""Container logs through the emulated API (`GET .../pods/{name}/log`), as a real API server and kubelet
answer: the player's start-up lines and planted ones, container choice, previous instances, tailLines,
limitBytes, timestamps, and the errors (400, 404, 422) in the cluster's words. No real API server runs
on these machines; the client is the real Kubernetes client."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.emulator.controllers.logs import LOG_ANNOTATION
from tests.fixtures.cluster import EmulatorProcess

NS = "apps"


def _core(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))


def _deploy(kubeconfig: Path, name: str, containers: list[dict[str, Any]], *, annotations: dict[str, str] | None = None,
            on_workload: dict[str, str] | None = None, replicas: int = 1) -> None:
    client.AppsV1Api(config.new_client_from_config(str(kubeconfig))).create_namespaced_deployment(NS, {
        "metadata": {"name": name, "annotations": on_workload or {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                              "spec": {"containers": containers}}}})


def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _log(core: client.CoreV1Api, pod: str, namespace: str, **options: Any) -> str:
    """The log as text. The client's own decoding turns a text body into "b'...'" (it skips decoding for
    `str` answers), so the raw response is read, as the support bundle's collector does."""
    response = core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **options)
    try:
        assert str(response.headers.get("Content-Type")).startswith("text/plain")
        return bytes(response.data).decode()
    finally:
        response.release_conn()


def _error(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ApiException) as caught:
        call()
    import json

    body = json.loads(caught.value.body)
    return caught.value.status, body["reason"], body["message"]


def _running(core: client.CoreV1Api, pod: str) -> bool:
    try:
        found = core.read_namespaced_pod(pod, NS)
    except ApiException:
        return False
    return all(cs.state.running for cs in found.status.container_statuses or [None] if cs is not None) and bool(
        found.status.container_statuses)


@pytest.fixture
def two_containers(cluster: ClusterThread, kubeconfig: Path) -> client.CoreV1Api:
    cluster.call(lambda c: c.add_namespace(NS))
    _deploy(kubeconfig, "web", [
        {"name": "app", "image": "ghcr.io/acme/app:1.0", "ports": [{"containerPort": 8080}],
         "env": [{"name": "MODE", "value": "not-in-the-log-7f3a"}]},
        {"name": "proxy", "image": "ghcr.io/acme/proxy:1.0"}],
        annotations={LOG_ANNOTATION: "planted for all\nsecond planted line", f"{LOG_ANNOTATION}.proxy": "proxy only"})
    core = _core(kubeconfig)
    _until(lambda: _running(core, "web-0"), "web-0 running")
    return core


def test_each_container_logs_its_start_up_and_planted_lines(two_containers: client.CoreV1Api) -> None:
    core = two_containers
    app = _log(core, "web-0", NS, container="app")
    assert app.splitlines() == ["starting app (image ghcr.io/acme/app:1.0)", "environment: 1 variables, 0 sources",
                                "listening on :8080", "planted for all", "second planted line", "ready"]
    assert "not-in-the-log-7f3a" not in app, "an environment value is never logged"
    proxy = _log(core, "web-0", NS, container="proxy")
    assert proxy.splitlines()[-3:] == ["second planted line", "proxy only", "ready"]
    assert _log(core, "web-0", NS, container="app", tail_lines=2) == "second planted line\nready\n"
    assert _log(core, "web-0", NS, container="app", tail_lines=0) == ""
    assert _log(core, "web-0", NS, container="app", limit_bytes=8) == "starting"
    stamped = _log(core, "web-0", NS, container="app", timestamps=True, tail_lines=1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ready\n", stamped), stamped
    assert _log(core, "web-0", NS, container="app", since_seconds=3600).endswith("ready\n")


def test_lines_planted_directly_are_served(cluster: ClusterThread, two_containers: client.CoreV1Api) -> None:
    assert cluster.cluster is not None
    cluster.cluster.logs.plant(NS, "web-0", "app", ["GET /healthz 200"])
    assert _log(two_containers, "web-0", NS, container="app", tail_lines=1) == "GET /healthz 200\n"
    with pytest.raises(KeyError, match="has not started"):
        cluster.cluster.logs.plant(NS, "web-0", "nope", ["x"])


def test_errors_are_the_clusters(two_containers: client.CoreV1Api) -> None:
    core = two_containers
    assert _error(lambda: _log(core, "web-0", NS)) == (
        400, "BadRequest", "a container name must be specified for pod web-0, choose one of: [app proxy]")
    assert _error(lambda: _log(core, "web-0", NS, container="nope")) == (
        400, "BadRequest", "container nope is not valid for pod web-0")
    assert _error(lambda: _log(core, "gone-0", NS, container="app")) == (
        404, "NotFound", 'pods "gone-0" not found')
    assert _error(lambda: _log(core, "web-0", NS, container="app", previous=True)) == (
        400, "BadRequest", 'previous terminated container "app" in pod "web-0" not found')
    assert _error(lambda: _log(core, "web-0", NS, container="app", tail_lines=-1)) == (
        422, "Invalid", 'PodLogOptions "web-0" is invalid: tailLines: Invalid value: -1: must be greater than or '
        "equal to 0")
    assert _error(lambda: _log(core, "web-0", NS, container="app", limit_bytes=0))[:2] == (
        422, "Invalid")


def test_a_crashing_container_logs_why_and_one_never_started_has_no_log(cluster: ClusterThread,
                                                                         kubeconfig: Path) -> None:
    assert cluster.controllers is not None
    cluster.call(lambda c: c.add_namespace(NS))
    cluster.controllers.fail("crashy", NS, reason="CrashLoopBackOff", message="dial postgres: connection refused")
    _deploy(kubeconfig, "crashy", [{"name": "main", "image": "ghcr.io/acme/crashy:1.0"}])
    _deploy(kubeconfig, "unpulled", [{"name": "main", "image": "ghcr.io/acme/unpulled:1.0"}],
            on_workload={"sandbox.hfwizard.io/fail": "ImagePullBackOff"})
    core = _core(kubeconfig)

    def restarted(pod: str) -> bool:
        try:
            statuses = core.read_namespaced_pod(pod, NS).status.container_statuses or []
        except ApiException:
            return False
        return bool(statuses) and statuses[0].state.waiting is not None and statuses[0].state.waiting.reason not in (
            "ContainerCreating",)

    _until(lambda: restarted("crashy-0") and restarted("unpulled-0"), "the failures to show")
    # One container: no name needed. A crash-looping container's log is its last run's, as `--previous`.
    current = _log(core, "crashy-0", NS)
    assert current.splitlines()[-1] == "fatal: dial postgres: connection refused (exit code 1)"
    assert _log(core, "crashy-0", NS, previous=True) == current
    unpulled = core.read_namespaced_pod("unpulled-0", NS).status.container_statuses[0]
    assert unpulled.restart_count == 0 and not (unpulled.last_state and unpulled.last_state.terminated), (
        "an image never pulled never ran")
    assert _error(lambda: _log(core, "unpulled-0", NS)) == (
        400, "BadRequest", 'container "main" in pod "unpulled-0" is waiting to start: trying and failing to pull image')


def test_the_emulator_process_serves_logs(emulator_process: EmulatorProcess) -> None:
    """The sandbox's emulator runs as its own process, its player inside: the same logs come out."""
    emulator_process.start()
    core = _core(emulator_process.kubeconfig)
    core.create_namespace({"metadata": {"name": NS}})
    _deploy(emulator_process.kubeconfig, "solo", [{"name": "main", "image": "ghcr.io/acme/solo:1.0"}],
            annotations={LOG_ANNOTATION: "planted across processes"})
    _until(lambda: _running(core, "solo-0"), "solo-0 running")
    assert _log(core, "solo-0", NS).splitlines()[-2:] == ["planted across processes", "ready"]
