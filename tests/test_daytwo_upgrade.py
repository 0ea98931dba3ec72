"""Upgrade mechanics with Highflame's real charts (generic 1.0.2 -> 1.0.3, redteam 1.0.4 -> 1.0.5)
through an explicit plan: the plan diff, a failed upgrade that uninstalls nothing, --rollback-on-failure
putting back only what changed (releases and env Secrets), generated secrets never regenerated, and a
SIGKILLed upgrade carried on to the end.

The Kubernetes API is emulated (kmock plus our shim on loopback: no real API server runs on these
machines) and its kubelet fails the pods of a workload annotated `sandbox.hfwizard.io/fail`; Helm is
real (the Go SDK in a child process).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard import operations
from hfwizard.daytwo.upgrade import SNAPSHOT
from hfwizard.events import Event, InstallFinished, LogLine
from tests import daytwo_platform as hp
from tests.engine_support import ROOT, emulated_cluster, env
from tests.fixtures.servers import PgServer

pytestmark = pytest.mark.skipif(not hp.CHARTS.is_dir(), reason="Highflame's charts are not on this machine")

OLD_PASSWORD, NEW_PASSWORD = "old-db-canary-1a2b3c", "new-db-canary-4d5e6f"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The older versions installed (image tag 1.0.0, env Secrets with the old password) as "up"."""
    monkeypatch.setenv(hp.DB_ENV, OLD_PASSWORD)
    with emulated_cluster(ready_delay=0.1) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        prof = hp.profile("up", kc, stall=5)
        inst = hp.saved_install(tmp_path / "state", prof)
        code, seen = hp.run_engine(prof, inst, hp.versioned_plan(hp.OLD, "1.0.0"))
        assert code == 0, seen[-1]
        k = hp.kube(kc)
        yield {"tmp": tmp_path, "state": tmp_path / "state", "kube": k, "inst": inst, "profile": prof,
               "generated": hp.secret_text(k, hp.GENERATED)}


def _upgrade(ctx: dict[str, Any], *, failing: str | None, rollback: bool,
             charts: dict[str, tuple[str, str]] = hp.NEW,
             watch: Callable[[Event], None] | None = None) -> tuple[int | None, list[Event]]:
    prof = ctx["profile"]
    run = operations.upgrade_run(prof, ctx["inst"].path, hp.versioned_plan(charts, "2.0.0", failing=failing),
                                 rollback_on_failure=rollback, target=operations.resolve_target(prof))
    seen: list[Event] = []

    async def go() -> None:
        async for event in run.events():
            seen.append(event)
            if watch is not None:
                await asyncio.to_thread(watch, event)

    asyncio.run(go())
    return run.exit_code, seen


def test_the_plan_shows_chart_image_and_values_changes_and_secrets_only_as_changed(
        installed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hp.DB_ENV, NEW_PASSWORD)
    prof = installed["profile"]
    lines = operations.upgrade_changes(installed["inst"].path, prof, hp.versioned_plan(hp.NEW, "2.0.0"),
                                       target=operations.resolve_target(prof))
    text = "\n".join(lines)
    assert "highflame-admin: chart highflame-generic-1.0.2 -> highflame-generic-1.0.3" in lines
    assert "highflame-redteam: chart highflame-redteam-1.0.4 -> highflame-redteam-1.0.5" in lines
    assert "  image tag 1.0.0 -> 2.0.0" in lines
    assert '  image.tag: "1.0.0" -> "2.0.0"' in lines
    assert "Secret highflame-admin-env: DB_PASSWORD changed" in lines
    assert OLD_PASSWORD not in text and NEW_PASSWORD not in text
    assert not any(line.startswith(f"Secret {hp.GENERATED}") for line in lines), "generated: never changed"


def test_a_failed_upgrade_uninstalls_nothing(installed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hp.DB_ENV, NEW_PASSWORD)
    k = installed["kube"]
    code, seen = _upgrade(installed, failing="authn", rollback=False, charts=hp.NEW_WITH_MODULE)
    assert code == 1, seen[-1]
    assert hp.chart_versions(k) == {"highflame-admin": (2, "deployed", "1.0.3"),
                                    "highflame-guard-pii": (1, "deployed", "1.0.3"),
                                    "highflame-authn": (2, "failed", "1.0.3"),
                                    "highflame-redteam": (1, "deployed", "1.0.4")}
    assert hp.secret_text(k, "highflame-authn-env") == {"DB_PASSWORD": NEW_PASSWORD}
    assert hp.secret_text(k, hp.GENERATED) == installed["generated"]
    assert k.read_secret(hp.NS, SNAPSHOT) is not None, "kept for a later --rollback-on-failure run"


def test_rollback_on_failure_puts_back_only_what_this_upgrade_changed(
        installed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade turns a module on (a release and its env Secret new), changes a Secret hfwizard keeps
    in another namespace, and fails at authn: the new release and Secret go, the changed ones come back."""
    monkeypatch.setenv(hp.DB_ENV, NEW_PASSWORD)
    k = installed["kube"]
    # A stale snapshot (a finished upgrade whose clean-up failed) must not become this upgrade's way back.
    import base64

    from hfwizard.daytwo.upgrade import read_snapshot, take_snapshot

    take_snapshot(k, hp.NS, ["highflame-admin"])
    stale = base64.b64encode(b'{"highflame-admin": 7}').decode()
    k.core.patch_namespaced_secret(SNAPSHOT, hp.NS, {"data": {"revisions": stale}})
    added, added_env = f"highflame-{hp.ADDED}", f"highflame-{hp.ADDED}-env"
    seen_snapshot: list[Any] = []

    def watch(event: Event) -> None:
        if getattr(event, "step_id", "") == "upgrade/snapshot" and type(event).__name__ == "StepFinished":
            seen_snapshot.append(read_snapshot(k, hp.NS))

    code, seen = _upgrade(installed, failing="authn", rollback=True, charts=hp.NEW_WITH_MODULE, watch=watch)
    assert code == 1
    snap = seen_snapshot[0]
    assert snap.added == [added] and f"{hp.NS}/{added_env}" in snap.created
    assert f"{hp.OWN_NS}/{hp.OWN_NS_SECRET}" in snap.secrets, "owned in another namespace: in the snapshot too"
    finished = seen[-1]
    assert isinstance(finished, InstallFinished)
    assert finished.message.endswith(f"rolled back: highflame-admin, highflame-authn; uninstalled: {added}"), (
        finished.message)
    assert hp.chart_versions(k) == {"highflame-admin": (3, "deployed", "1.0.2"),
                                    "highflame-authn": (3, "deployed", "1.0.2"),
                                    "highflame-redteam": (1, "deployed", "1.0.4")}, "redteam was never changed"
    assert k.read_secret(hp.NS, added_env) is None, "the Secret the upgrade created is gone with its release"
    for name in ("highflame-admin-env", "highflame-authn-env"):
        assert hp.secret_text(k, name) == {"DB_PASSWORD": OLD_PASSWORD}, name
    assert hp.secret_text(k, hp.OWN_NS_SECRET, hp.OWN_NS) == {"password": OLD_PASSWORD}
    assert (k.read_secret(hp.OWN_NS, hp.OWN_NS_SECRET) or {})["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "hfwizard"}
    assert hp.secret_text(k, hp.GENERATED) == installed["generated"]
    assert k.read_secret(hp.NS, SNAPSHOT) is None
    logged = [e.line for e in seen if isinstance(e, LogLine) and e.step_id == "rollback"]
    restored = logged.index(f"Secret {hp.NS}/highflame-authn-env: previous content put back")
    assert restored < next(i for i, line in enumerate(logged) if line.startswith("rolling highflame-authn back")), (
        "Secrets go back before the releases whose pods read them restart")
    assert f"Secret {hp.NS}/{added_env}: removed (this upgrade created it)" in logged
    assert not any(OLD_PASSWORD in str(e) or NEW_PASSWORD in str(e) for e in seen)


def _driver(ctx: dict[str, Any], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.daytwo_upgrade_driver", str(ctx["state"]), "up", *args],
                          cwd=ROOT, env=env(**{hp.DB_ENV: NEW_PASSWORD, **extra}), capture_output=True, text=True,
                          timeout=240)


def test_a_killed_upgrade_carries_on_to_every_release_at_the_new_version(installed: dict[str, Any]) -> None:
    k = installed["kube"]
    # Killed as authn's upgrade starts, after admin's went through: the middle of the upgrade, every time.
    killed = _driver(installed, HFWIZARD_TEST_KILL_AT="helm/highflame-authn:started")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    snapshot = k.read_secret(hp.NS, SNAPSHOT)
    assert snapshot is not None
    again = _driver(installed)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "StepFinished upgrade/snapshot" in again.stdout
    assert {name: (status, version) for name, (_, status, version) in hp.chart_versions(k).items()} == {
        "highflame-admin": ("deployed", "1.0.3"), "highflame-authn": ("deployed", "1.0.3"),
        "highflame-redteam": ("deployed", "1.0.5")}
    assert hp.chart_versions(k)["highflame-admin"][0] == 2, "admin, done before the kill, was not upgraded twice"
    assert hp.secret_text(k, hp.GENERATED) == installed["generated"], "generated secrets are never regenerated"
    assert hp.secret_text(k, "highflame-admin-env") == {"DB_PASSWORD": NEW_PASSWORD}
    assert k.read_secret(hp.NS, SNAPSHOT) is None, "a finished upgrade drops its snapshot"


def test_upgrade_command_shows_the_plan_then_upgrades_and_keeps_the_new_profile(tmp_path: Path, pg17: PgServer) -> None:
    """`hfwizard upgrade NAME --profile F` end to end over the install's own plan (build_plan), its
    databases on a real PostgreSQL."""
    from tests.engine_support import events, hfwizard, write_profile

    state = tmp_path / "state"
    with emulated_cluster(ready_delay=0.1) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        first = write_profile(tmp_path, kc, stall=20, pg=pg17)
        done = hfwizard("install", "--profile", str(first), "--yes", "--json", "--skip-preflight",
                        state=state, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        installed = events(done.stdout)
        dns = [e["line"] for e in installed if e["event"] == "log" and e["step_id"] == "dns"]
        # The emulated ingress gets no load balancer address (only LoadBalancer Services do), so the
        # hand-off says when to look again; test_daytwo_status covers the records and the DNS check.
        assert dns == ["DNS: the load balancer has no address yet; `hfwizard status canary` shows the records "
                       "once it has one"], dns
        assert installed[-1]["event"] == "done"
        newer = tmp_path / "newer.yaml"
        newer.write_text(first.read_text().replace('tag: "1.2.3"', 'tag: "1.3.0"'))
        bad = hfwizard("upgrade", "canary", "--platform", "1999.01", "--yes", state=state, cwd=tmp_path)
        assert bad.returncode == 2 and "--platform 1999.01" in bad.stderr
        up = hfwizard("upgrade", "canary", "--profile", str(newer), "--json", state=state, cwd=tmp_path,
                     timeout=300)
        assert up.returncode == 0, up.stderr + up.stdout[-2000:]
        evs = events(up.stdout)
        plan = [e["message"] for e in evs if e["event"] == "upgrade_plan"]
        assert "  image tag 1.2.3 -> 1.3.0" in plan, plan
        # The env Secrets' checksum annotation is the engine's own: an unchanged Secret is no change.
        assert not any("env-checksum" in line for line in plan), plan
        assert [e for e in evs if e["event"] == "done"][-1]["message"] == "Highflame (canary) is upgraded"
        from hfwizard.store.install_dir import InstallDir

        inst = InstallDir.under(state, "canary")
        assert 'tag: "1.3.0"' in inst.profile_path.read_text() or "tag: 1.3.0" in inst.profile_path.read_text()
        assert not inst.previous_profile_path.exists()
