"""Outbound from inside the cluster: a probe pod per preflight, played by the emulator (hosts reachable or blocked)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.checks.cluster_outbound import NOT_ALLOWED, PROBE_IMAGE, PROBE_LABEL
from hfwizard.preflight import PreflightSettings, build_checks, plan_preflight, run_check
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.emulator.controllers.bare_pods import container_end, parse_egress
from tests.standins import publishable_key

CLERK_HOST = "clerk.acme.example"
IDS = ("outbound/cluster-registry", "outbound/cluster-clerk-frontend", "outbound/cluster-clerk-api")


def _profile(kubeconfig: Path, allowed: bool = True, **extra: Any) -> InstallProfile:
    return InstallProfile.model_validate({
        "target": {"cloud": "existing", "kubeconfig": str(kubeconfig), "namespace": "highflame"},
        "clerk": {"publishableKey": publishable_key(CLERK_HOST)},
        "preflight": {"clusterOutbound": allowed, "timeoutSeconds": 5},
        **extra,
    })


async def _run(profile: InstallProfile, kubeconfig: Path) -> dict[str, CheckResult]:
    checks = [c for c in build_checks(profile, PreflightSettings(kubeconfig=str(kubeconfig))) if c.id in IDS]
    assert [c.id for c in checks] == list(IDS)
    return {r.id: r for r in await asyncio.gather(*(run_check(c) for c in checks))}


def _probe_pods(cluster: ClusterThread) -> list[Any]:
    assert cluster.cluster is not None
    return [p for p in cluster.cluster.store.list_objects("v1", "Pod")
            if (p["metadata"].get("labels") or {}).get(PROBE_LABEL)]


async def test_every_host_reachable_passes_and_the_pod_is_gone(cluster: ClusterThread, kubeconfig: Path) -> None:
    got = await _run(_profile(kubeconfig), kubeconfig)
    assert {k: r.status for k, r in got.items()} == dict.fromkeys(IDS, Status.PASS), got
    assert "https://ghcr.io/v2/ answered HTTP 401 from a pod in namespace default" in got[IDS[0]].finding
    assert got[IDS[1]].details["url"] == f"https://{CLERK_HOST}/.well-known/jwks.json"
    assert _probe_pods(cluster) == []  # deleted after the run


async def test_a_blocked_clerk_host_fails_naming_it_and_what_to_do(cluster: ClusterThread, kubeconfig: Path) -> None:
    assert cluster.controllers is not None
    cluster.controllers.block_egress(CLERK_HOST, "timeout")
    cluster.controllers.block_egress("api.clerk.com", "dns")
    cluster.call(lambda c: c.store.upsert({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "highflame"}}))
    got = await _run(_profile(kubeconfig), kubeconfig)
    assert got[IDS[0]].status is Status.PASS
    front, api = got[IDS[1]], got[IDS[2]]
    assert front.status is Status.FAIL and api.status is Status.FAIL
    assert CLERK_HOST in front.finding and "namespace highflame" in front.finding and "curl exit 28" in front.finding
    assert "NAT gateway, egress firewall" in (front.remedy or "") and "NetworkPolicies" in (front.remedy or "")
    assert "Could not resolve host: api.clerk.com" in api.finding and "CoreDNS" in (api.remedy or "")
    assert _probe_pods(cluster) == []


async def test_an_image_the_nodes_cannot_pull_fails_once_through_the_mirror(tmp_path: Path) -> None:
    with ClusterThread(controllers=True, unreachable_registries=frozenset({"mirror.acme.example"})) as cluster:
        cluster.call(lambda c: c.seed_default(workers=6, cpu="8", memory="32Gi"))
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        profile = _profile(kubeconfig, images={"mirror": "mirror.acme.example/ghcr"})
        got = await _run(profile, kubeconfig)
        reg = got[IDS[0]]
        assert reg.status is Status.FAIL, reg
        assert f"could not pull the probe image mirror.acme.example/ghcr/{PROBE_IMAGE}" in reg.finding
        assert "ErrImagePull" in reg.finding and "preflight.probeImage" in (reg.remedy or "")
        assert reg.details["url"] == "https://mirror.acme.example/v2/"  # the registry the nodes pull from
        assert [got[i].status for i in IDS[1:]] == [Status.SKIPPED, Status.SKIPPED]
        assert f"see {IDS[0]}" in got[IDS[1]].finding
        assert _probe_pods(cluster) == []


async def test_not_allowed_it_is_skipped_with_the_way_to_allow_it(cluster: ClusterThread, kubeconfig: Path) -> None:
    profile = _profile(kubeconfig, allowed=False)
    got = await _run(profile, kubeconfig)
    assert {r.status for r in got.values()} == {Status.SKIPPED}
    assert got[IDS[0]].finding == NOT_ALLOWED and "--cluster-outbound" in NOT_ALLOWED
    assert _probe_pods(cluster) == []
    assert cluster.cluster is not None and cluster.cluster.store.list_objects("v1", "Pod") == []
    assert set(IDS) <= set(plan_preflight(profile).ids)


def test_the_emulator_plays_curl_per_host() -> None:
    blocked = parse_egress(["ghcr.io=dns", "clerk.acme.example:443"])
    curl = {"args": ["-sS", "-w", "%output{/dev/termination-log}%{http_code} %{errormsg}", "https://ghcr.io/v2/"]}
    assert container_end(curl, blocked) == (6, "000 Could not resolve host: ghcr.io")
    assert container_end(curl, {}) == (0, "401 ")
    plain = {"command": ["curl", "https://clerk.acme.example/x"], "terminationMessagePolicy": "FallbackToLogsOnError"}
    assert container_end(plain, blocked)[0] == 7
    assert container_end(plain, blocked)[1].startswith("curl: (7) Failed to connect to clerk.acme.example port 443")
    assert container_end({"command": ["sleep", "1"]}, blocked) == (0, "")
    with pytest.raises(ValueError, match="want HOST"):
        parse_egress(["ghcr.io=sometimes"])


async def test_a_pod_that_never_runs_is_reported_and_deleted_even_when_cancelled(
        cluster: ClusterThread, kubeconfig: Path) -> None:
    async def drain(c: Any) -> None:
        for node in c.store.list_objects("v1", "Node"):
            await c.store.delete_object("v1", "Node", None, node["metadata"]["name"])

    cluster.call(drain)
    settings = PreflightSettings(kubeconfig=str(kubeconfig), timeouts=dict.fromkeys(IDS, 1.5))
    checks = [c for c in build_checks(_profile(kubeconfig), settings) if c.id in IDS]
    got = await run_check(checks[0])
    assert got.status is Status.FAIL and "was not scheduled within 1 s" in got.finding, got
    assert _probe_pods(cluster) == []

    task = asyncio.ensure_future(build_checks(_profile(kubeconfig), settings)[-3].run())
    for _ in range(50):  # until the pod exists
        await asyncio.sleep(0.05)
        if _probe_pods(cluster):
            break
    assert _probe_pods(cluster), "the probe pod was never created"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(40):
        if not _probe_pods(cluster):
            break
        await asyncio.sleep(0.05)
    assert _probe_pods(cluster) == []


def test_the_cli_flag_turns_it_on_and_a_blocked_host_fails_the_run(cluster: ClusterThread, kubeconfig: Path,
                                                                   tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    assert cluster.controllers is not None
    cluster.controllers.block_egress("ghcr.io", "refused")
    profile = tmp_path / "p.yaml"
    profile.write_text(f"apiVersion: hfwizard/v1\nkind: InstallProfile\ntarget: {{cloud: existing, kubeconfig: "
                       f"{kubeconfig}}}\nclerk: {{publishableKey: '{publishable_key(CLERK_HOST)}'}}\n")
    skip = [a for g in ("kubernetes", "platform", "helm", "postgres", "redis", "clerk", "blob", "cloud",
                        "outbound/registry", "outbound/clerk-frontend", "outbound/clerk-api")
            for a in ("--skip-check", g)]
    argv = [sys.executable, "-m", "hfwizard", "preflight", "--profile", str(profile), "--json", *skip]
    done = subprocess.run([*argv, "--cluster-outbound"], capture_output=True, text=True, timeout=60)  # profile: off
    assert done.returncode == 1, done.stderr
    events = {e["check_id"]: e for e in map(json.loads, done.stdout.splitlines()) if e.get("event") == "check"}
    reg = events["outbound/cluster-registry"]
    assert reg["status"] == "fail" and "https://ghcr.io/v2/ not reachable" in reg["finding"], reg
    assert "allow outbound 443" in reg["remedy"]
    assert events["outbound/cluster-clerk-frontend"]["status"] == "pass"
    assert _probe_pods(cluster) == []


def test_a_probe_left_behind_is_deleted_at_exit(cluster: ClusterThread, kubeconfig: Path) -> None:
    # A timeout or Ctrl-C can end the process before the check's own deletion ran: the atexit handler
    # deletes every probe still registered.
    from hfwizard.checks import cluster_outbound as co
    from hfwizard.engine.kube import connect

    body = co.probe_pod("hfwizard-egress-left", PROBE_IMAGE, [], 5)
    body["spec"]["containers"] = [{"name": "x", "image": PROBE_IMAGE, "command": ["sleep", "60"]}]
    cluster.call(lambda c: c.store.upsert({**body, "metadata": {**body["metadata"], "namespace": "default"}}))
    assert len(_probe_pods(cluster)) == 1
    co._PENDING[("default", "hfwizard-egress-left")] = connect(str(kubeconfig), "sandbox")
    co._delete_leftovers()
    assert _probe_pods(cluster) == [] and co._PENDING == {}
