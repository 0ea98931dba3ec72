"""The emulated cluster with the ClickHouse operator in its own process, SIGKILLed mid-reconcile and
restarted from its state file: the same objects carry on, none duplicated, and the installation completes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.platform import clickhouse as ch
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.clickhouse_operator import HOLD_ANNOTATION
from tests.clickhouse_support import OPERATOR_CHART

NS = "highflame"
PROFILE = InstallProfile.model_validate({"target": {"namespace": NS}, "clickhouse": {"replicas": 2}})

# What the sandbox will run once the lead starts the ClickHouse operator beside the controller player.
RUNNER = """
import asyncio, json, sys
from hfwizard.sandbox.emulator import EmulatedCluster
from hfwizard.sandbox.emulator.controllers import ControllerPlayer
from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator

async def main():
    async with EmulatedCluster(state_file=sys.argv[1], port=int(sys.argv[2])) as cluster:
        if not cluster.emulator.list_objects("v1", "Node"):
            await cluster.seed_default()
            await cluster.add_namespace("highflame")
        cluster.write_kubeconfig(sys.argv[3])
        await ControllerPlayer(cluster.emulator).start()
        await ClickHouseOperator(cluster.emulator).start()
        print(json.dumps({"url": cluster.url}), flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


class Runner:
    def __init__(self, folder: Path) -> None:
        self.state, self.kubeconfig, self.port = folder / "state.json", folder / "kubeconfig", 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(self.state), str(self.port), str(self.kubeconfig)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        self.port = int(json.loads(self.proc.stdout.readline())["url"].rsplit(":", 1)[1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    handle = Runner(tmp_path)
    try:
        yield handle
    finally:
        handle.kill()


def _until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"gave up after {timeout}s"
        time.sleep(0.1)
    return value


def _custom(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, NS, obj["kind"].lower() + "s", obj["metadata"]["name"])
    return found


def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    group, version = obj["apiVersion"].split("/")
    client.CustomObjectsApi(api).create_namespaced_custom_object(group, version, NS, obj["kind"].lower() + "s", obj)


def _hosts(api: client.ApiClient) -> dict[str, str]:
    return {s.metadata.name: s.metadata.uid for s in client.AppsV1Api(api).list_namespaced_stateful_set(NS).items}


def test_sigkill_mid_reconcile_then_restart_carries_on_with_the_same_objects(runner: Runner) -> None:
    runner.start()
    release = asyncio.run(EmbeddedHelm(runner.kubeconfig).install_or_upgrade(
        "clickhouse-operator", OPERATOR_CHART, "clickhouse-operator", {}, create_namespace=True, timeout_s=120))
    assert release.status == "deployed"
    api = config.new_client_from_config(str(runner.kubeconfig))
    chk, chi = ch.keeper_installation(PROFILE), ch.clickhouse_installation(PROFILE)
    chi["metadata"]["annotations"] = {HOLD_ANNOTATION: "true"}  # the emulator's own process reads it
    _create(api, chk)
    _create(api, chi)
    _until(lambda: ch.readiness(_custom(api, chk))[0])
    _until(lambda: (_custom(api, chi).get("status") or {}).get("hostsCompleted") == 1)
    before = _hosts(api)
    assert set(before) == {"chi-ch-highflame-0-0", "chi-ch-highflame-0-1", "chk-ch-keeper-0-0"}

    runner.kill()
    runner.start()
    api = config.new_client_from_config(str(runner.kubeconfig))
    assert _hosts(api) == before  # the same objects, by uid: nothing recreated, nothing doubled
    assert _custom(api, chi)["status"]["status"] == "InProgress"
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "clickhouse.altinity.com", "v1", NS, "clickhouseinstallations", "ch",
        {"metadata": {"annotations": {HOLD_ANNOTATION: None}}})
    _until(lambda: ch.readiness(_custom(api, chi))[0])
    assert _hosts(api) == before
    assert len(client.CoreV1Api(api).list_namespaced_persistent_volume_claim(NS).items) == 3
    assert sum(1 for s in client.CoreV1Api(api).list_namespaced_service(NS).items
               if s.metadata.name == "clickhouse-ch") == 1
