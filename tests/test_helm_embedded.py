"""Real Helm (Go SDK via helm-python-sdk, in child processes) against the emulated Kubernetes API.

No real Kubernetes API server can run on these machines: the API is kmock's emulator plus our shim
(hfwizard.sandbox.emulator) on loopback, and the controller player makes workloads ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config

from hfwizard.engine.helm import HelmTimeout, ReleaseNotFound
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.sandbox.emulator import ClusterThread
from tests.fixtures.cluster import EmulatorProcess


def _release_records(cluster: ClusterThread, namespace: str, name: str) -> list[dict[str, str]]:
    assert cluster.cluster is not None
    return [
        s["metadata"]["labels"]
        for s in cluster.cluster.emulator.list_objects("v1", "Secret", namespace)
        if (s["metadata"].get("labels") or {}).get("owner") == "helm"
        and s["metadata"]["labels"].get("name") == name
    ]


def test_install_wait_upgrade_rollback_uninstall(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here), real Helm: the whole release lifecycle."""
    helm = EmbeddedHelm(kubeconfig)
    logs: list[str] = []

    async def scenario() -> None:
        first = await helm.install_or_upgrade(
            "demo",
            demo_chart,
            "apps",
            {"replicas": 2},
            create_namespace=True,
            timeout_s=30,
            on_log=logs.append,
        )
        assert (first.revision, first.status, first.chart) == (1, "deployed", "demo-0.1.0")
        # Each call is a new process: the upgrade reads the release back from its Secrets.
        second = await helm.install_or_upgrade("demo", demo_chart, "apps", {"message": "v2"}, timeout_s=30)
        assert (second.revision, second.status) == (2, "deployed")
        assert [(r.name, r.revision) for r in await helm.list_releases("apps")] == [("demo", 2)]
        rolled = await helm.rollback("demo", "apps", 1, timeout_s=30)
        assert (rolled.revision, rolled.status) == (3, "deployed")
        history = await helm.history("demo", "apps")
        assert [(h.revision, h.status) for h in history] == [
            (1, "superseded"),
            (2, "superseded"),
            (3, "deployed"),
        ]

    asyncio.run(scenario())
    assert any("waiting for resources" in line for line in logs)  # Helm's log lines arrive as events
    api = config.new_client_from_config(str(kubeconfig))
    deployment = client.AppsV1Api(api).read_namespaced_deployment("demo-web", "apps")
    assert deployment.status.ready_replicas == 2
    assert client.CoreV1Api(api).read_namespaced_config_map("demo-config", "apps").data == {
        "message": "hello"
    }
    assert (
        client.NetworkingV1Api(api).read_namespaced_ingress("demo-web", "apps").spec.ingress_class_name
        == "nginx"
    )
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("demo-web", "apps")
    assert client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("demo-web", "apps")
    pods = client.CoreV1Api(api).list_namespaced_pod("apps", label_selector="app.kubernetes.io/component=web")
    assert sorted(p.metadata.name for p in pods.items) == ["demo-web-0", "demo-web-1"]
    assert {r["version"] for r in _release_records(cluster, "apps", "demo")} == {"1", "2", "3"}

    asyncio.run(helm.uninstall("demo", "apps", timeout_s=30))
    assert asyncio.run(helm.list_releases("apps")) == []
    assert not client.AppsV1Api(api).list_namespaced_deployment("apps").items
    with pytest.raises(ReleaseNotFound):
        asyncio.run(helm.status("demo", "apps"))


def test_template_renders_without_a_cluster(demo_chart: Path) -> None:
    """Emulated API not even needed (no real API server here either): `helm template` is offline."""
    rendered = asyncio.run(EmbeddedHelm().render("demo", demo_chart, "apps", {"message": "templated"}))
    manifest = rendered["demo/templates/all.yaml"]
    assert 'message: "templated"' in manifest and "kind: StatefulSet" in manifest


def test_held_back_deployment_makes_the_wait_time_out(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here): a workload that never turns ready."""
    assert cluster.controllers is not None
    cluster.controllers.hold("stuck-web")
    started = time.monotonic()
    with pytest.raises(HelmTimeout) as caught:
        asyncio.run(
            EmbeddedHelm(kubeconfig).install_or_upgrade("stuck", demo_chart, "default", {}, timeout_s=2)
        )
    assert "stuck-web" in str(caught.value) and time.monotonic() - started < 20
    assert asyncio.run(EmbeddedHelm(kubeconfig).status("stuck", "default")).status == "failed"


def _start_child(kubeconfig: Path, request: dict[str, object]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "hfwizard.engine.helm_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps({"kubeconfig": str(kubeconfig), "context": None, **request}).encode())
    child.stdin.close()
    return child


def _kill_when_pending(
    cluster: ClusterThread, child: subprocess.Popen[bytes], name: str, status: str
) -> None:
    deadline = time.monotonic() + 20
    while not any(r.get("status") == status for r in _release_records(cluster, "default", name)):
        assert time.monotonic() < deadline, f"the release never reached {status}"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)


def test_recover_a_release_left_pending_by_a_killed_process(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here): SIGKILL mid-install, then recover."""
    assert cluster.controllers is not None
    helm = EmbeddedHelm(kubeconfig)
    chart = {"ref": str(demo_chart), "repo_url": None}
    base = {"namespace": "default", "values": {}, "wait": True, "timeout_s": 60, "version": None}

    # A first install killed while waiting: the release is removed so a new install can start clean.
    cluster.controllers.hold("first-*")
    child = _start_child(kubeconfig, {"op": "install_or_upgrade", "release": "first", "chart": chart, **base})
    _kill_when_pending(cluster, child, "first", "pending-install")
    assert asyncio.run(helm.status("first", "default")).status == "pending-install"
    assert asyncio.run(helm.recover_pending("first", "default")) is None
    assert _release_records(cluster, "default", "first") == []
    cluster.controllers.release("first-*")
    assert (
        asyncio.run(helm.install_or_upgrade("first", demo_chart, "default", {}, timeout_s=30)).revision == 1
    )

    # An upgrade killed while waiting: rolled back to the last deployed revision.
    cluster.controllers.hold("first-*")
    child = _start_child(
        kubeconfig,
        {"op": "install_or_upgrade", "release": "first", "chart": chart, **base, "values": {"message": "v2"}},
    )
    _kill_when_pending(cluster, child, "first", "pending-upgrade")
    cluster.controllers.release("first-*")
    recovered = asyncio.run(helm.recover_pending("first", "default"))
    assert recovered is not None and (recovered.revision, recovered.status) == (3, "deployed")
    again = asyncio.run(
        helm.install_or_upgrade("first", demo_chart, "default", {"message": "v3"}, timeout_s=30)
    )
    assert (again.revision, again.status) == (4, "deployed")


_PARENT_SCRIPT = """
import asyncio, sys
from hfwizard.engine.helm_embedded import EmbeddedHelm
helm = EmbeddedHelm(sys.argv[1])
asyncio.run(helm.install_or_upgrade("orphan", sys.argv[2], "default", {}, timeout_s=120))
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended while we looked
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie nobody reaps has ended all the same


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_helm_child_ends_when_its_parent_is_killed(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here): the process calling Helm is SIGKILLed
    while Helm waits; Helm's child, in a session of its own, must not run on and race a `resume`."""
    assert cluster.controllers is not None
    cluster.controllers.hold("orphan-*")
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_SCRIPT, str(kubeconfig), str(demo_chart)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not any(r.get("status") == "pending-install" for r in _release_records(cluster, "default", "orphan")):
            assert time.monotonic() < deadline and parent.poll() is None, "Helm never started waiting"
            time.sleep(0.05)
        (child,) = _children(parent.pid)
        assert _running(child)
        parent.kill()
        parent.wait(10)
        killed = time.monotonic()
        while _running(child):
            assert time.monotonic() - killed < 3.0, f"Helm's child {child} outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
    # It ended through SIGTERM's path: Helm cancelled and recorded the release as failed.
    assert [r.get("status") for r in _release_records(cluster, "default", "orphan")] == ["failed"]


def test_release_survives_sigkill_of_the_emulator(
    emulator_process: EmulatorProcess, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here) in its own process: Helm's release
    Secrets are on disk when the emulator is killed and restarted."""
    emulator_process.start()
    helm = EmbeddedHelm(emulator_process.kubeconfig)
    assert asyncio.run(helm.install_or_upgrade("kept", demo_chart, "default", {}, timeout_s=30)).revision == 1
    emulator_process.kill()
    emulator_process.start()
    status = asyncio.run(helm.status("kept", "default"))
    assert (status.revision, status.status) == (1, "deployed")
    assert (
        asyncio.run(
            helm.install_or_upgrade("kept", demo_chart, "default", {"message": "v2"}, timeout_s=30)
        ).revision
        == 2
    )


def _gone(pid: int) -> bool:
    """Ended and reaped: no process, not even a zombie, under that pid."""
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_one_child_serves_every_call_and_is_ended_on_close(
    cluster: ClusterThread, kubeconfig: Path, demo_chart: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here): the child started ahead (`prewarm`,
    as the engine does) serves every call, Helm's log still reaches the call's sink; closing the
    backend ends and reaps it; a next call starts a new one."""
    logs: list[str] = []

    async def scenario() -> list[int]:
        async with EmbeddedHelm(kubeconfig) as helm:
            await helm.prewarm()
            first = helm.child_pid
            assert first is not None and _running(first) and first in _children(os.getpid())
            await helm.prewarm()  # one is running: no second child
            assert helm.child_pid == first
            info = await helm.install_or_upgrade("warm", demo_chart, "default", {}, timeout_s=30, on_log=logs.append)
            assert (info.revision, info.status) == (1, "deployed")
            assert (await helm.status("warm", "default")).revision == 1
            assert (await helm.history("warm", "default"))[-1].revision == 1
            assert helm.last_pid == first and _running(first)
        assert _gone(first) and helm.child_pid is None
        assert (await helm.status("warm", "default")).revision == 1  # a new child for the next call
        second = helm.last_pid
        assert second is not None and second != first
        await helm.aclose()
        return [first, second]

    pids = asyncio.run(scenario())
    assert all(_gone(pid) for pid in pids)
    assert any("waiting for resources" in line for line in logs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_per_call_children_and_their_warm_ones(demo_chart: Path) -> None:
    """No cluster needed (`render` is offline): with `per_call`, each call has a child of its own,
    ended and reaped with the call; one started ahead serves the next call."""

    async def scenario() -> list[int]:
        async with EmbeddedHelm(per_call=True) as helm:
            await helm.prewarm(2)
            warm = helm.warm_pids
            assert len(warm) == 2 and helm.child_pid is None
            assert "demo/templates/all.yaml" in await helm.render("demo", demo_chart, "apps", {})
            assert helm.last_pid == warm[0] and _gone(warm[0]) and helm.warm_pids == warm[1:]
            await helm.render("demo", demo_chart, "apps", {})
            assert helm.last_pid == warm[1] and _gone(warm[1])
            await helm.render("demo", demo_chart, "apps", {})
            cold = helm.last_pid
            assert cold is not None and cold not in warm and _gone(cold)
            await helm.prewarm()
            loading = helm.warm_pids
        return [*warm, cold, *loading]

    assert all(_gone(pid) for pid in asyncio.run(scenario()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_a_child_is_not_used_with_another_environment(
    demo_chart: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cluster needed (`render` is offline): a child started before the environment changed takes
    no more calls and ends; the call gets a child with the environment as it is now. Closing right
    after a prewarm ends a child that is still loading Helm."""

    async def scenario() -> list[int]:
        helm = EmbeddedHelm()
        try:
            await helm.prewarm()
            stale = helm.child_pid
            assert stale is not None
            monkeypatch.setenv("HFWIZARD_HELM_DEBUG", "0")
            assert helm.child_pid is None  # it no longer fits
            rendered = await helm.render("demo", demo_chart, "apps", {})
            assert "demo/templates/all.yaml" in rendered
            served = helm.last_pid
            assert served is not None and served != stale
            deadline = time.monotonic() + 5
            while not _gone(stale):  # told to end (no more calls), reaped by its reader thread
                assert time.monotonic() - deadline < 0, f"stale child {stale} still there"
                await asyncio.sleep(0.05)
            monkeypatch.setenv("HFWIZARD_HELM_DEBUG", "1")
            await helm.prewarm()
            loading = helm.child_pid
            assert loading is not None
        finally:
            started = time.monotonic()
            await helm.aclose()
            assert time.monotonic() - started < 2.0
        return [stale, served, loading]

    for pid in asyncio.run(scenario()):
        assert _gone(pid)


_WARM_PARENT_SCRIPT = """
import asyncio, sys, time
from hfwizard.engine.helm_embedded import EmbeddedHelm

async def main():
    helm = EmbeddedHelm(sys.argv[1])
    await helm.prewarm()
    print(helm.child_pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
@pytest.mark.parametrize("settle", [0.0, 2.0], ids=["loading-helm", "waiting-for-request"])
def test_a_warm_child_ends_when_its_parent_is_killed(kubeconfig: Path, settle: float) -> None:
    """A SIGKILLed installer leaves no warm child behind, whether it was still loading Helm or
    already waiting for its request."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _WARM_PARENT_SCRIPT, str(kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _running(child) and child in _children(parent.pid)
        time.sleep(settle)
        assert _running(child)
        parent.kill()
        parent.wait(10)
        killed = time.monotonic()
        while _running(child):
            assert time.monotonic() - killed < 3.0, f"warm child {child} outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_the_engine_ends_its_warm_child_when_no_release_claims_it(
    cluster: ClusterThread, kubeconfig: Path, tmp_path: Path
) -> None:
    """Emulated API (kmock + our shim; no real API server here): the engine starts Helm's first child
    before its own set-up; a run interrupted before any release step leaves no child behind."""
    from hfwizard.engine.engine import Engine, EngineOptions
    from hfwizard.events import StepStarted
    from hfwizard.sandbox.rehearsal import sandbox_profile
    from tests.platform_support import CHARTS, CHARTS_MISSING

    if not (CHARTS / "index.yaml").is_file():
        pytest.skip(CHARTS_MISSING)
    profile = sandbox_profile(tmp_path, charts=CHARTS)
    profile.target.kubeconfig = str(kubeconfig)

    async def scenario() -> tuple[int | None, list[int]]:
        engine = Engine(profile, tmp_path / "install",
                        options=EngineOptions(kubeconfig=str(kubeconfig), context="sandbox"))
        warm: list[int] = []
        async for event in engine.run():
            if isinstance(event, StepStarted) and event.step_id == "namespace":
                helm = engine._helm
                assert isinstance(helm, EmbeddedHelm)
                warm = [pid for pid in [helm.child_pid] if pid is not None]
                engine.cancel()
        return engine.exit_code, warm

    code, warm = asyncio.run(scenario())
    assert code == 3 and len(warm) == 1
    assert _gone(warm[0]) and warm[0] not in _children(os.getpid())
