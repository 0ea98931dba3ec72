"""The wizard end to end into the sandbox's emulated cluster with real Helm: driven by keys from Welcome to
Done (Pilot), then as a real process in a real terminal (tmux) killed with SIGKILL mid-install and
resumed from the Welcome screen to the same cluster state."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from textual.pilot import Pilot

from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.rehearsal import STATE_FILE
from tests.engine_support import release_revisions, snapshot
from tests.screens_helpers import SANDBOX_ANSWERS

ROOT = Path(__file__).resolve().parent.parent
PK = "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA"
DOMAIN = "highflame.sandbox.local"


@dataclass
class ClusterState:
    objects: dict[str, Any]
    releases: dict[str, list[tuple[int, str]]]


def cluster_state(install: Path) -> ClusterState:
    """What the emulated cluster holds, read from the state file its process left in the install's dir."""
    with ClusterThread(controllers=False, state_file=install / STATE_FILE) as cluster:
        return ClusterState(snapshot(cluster), release_revisions(cluster))


async def _until(pilot: Pilot[Any], screen_id: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while pilot.app.screen.id != screen_id:
        assert time.monotonic() < end, f"still on {pilot.app.screen.id}, waiting for {screen_id}"
        await pilot.pause(0.05)


async def walk(root: Path) -> dict[str, Any]:
    """Welcome to Done by keys alone, on an 80×24 screen."""
    seen: dict[str, Any] = {}
    app = WizardApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # New install, named "highflame"
        await _until(pilot, "target-screen")
        await pilot.press("down", "enter", "ctrl+n")  # "existing" -> "sandbox"
        for step in ("credentials", "cluster", "data", "sizing", "modules", "clerk"):
            await _until(pilot, f"{step}-screen")
            if step != "clerk":
                await pilot.press("ctrl+n")
        await pilot.press(*PK, "ctrl+n")
        await _until(pilot, "ingress-screen")
        await pilot.press("tab", *DOMAIN, "tab", "tab", "space", "ctrl+n")  # domain; TLS off
        await _until(pilot, "review-screen")
        await pilot.press("ctrl+n")
        await _until(pilot, "preflight-screen")
        await app.workers.wait_for_complete()
        await pilot.pause()
        seen["checks"] = {r.id: r.status.value for r in app.screen.results.values()}
        await pilot.press("ctrl+n")
        await _until(pilot, "install-screen")
        await app.workers.wait_for_complete()
        await pilot.pause()
        seen["steps"] = {sid: row.status for sid, row in app.screen.rows.items()}
        await pilot.press("ctrl+n")
        await _until(pilot, "done-screen")
        seen["done"] = str(app.screen.query_one("#done-text").render())
        await pilot.press("ctrl+n")  # Quit
    seen["exit"] = app.return_code
    return seen


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], ClusterState]]:
    root = tmp_path_factory.mktemp("wizard") / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KUBECONFIG", raising=False)
        mp.setenv("HFWIZARD_SANDBOX_READY_DELAY", "0.2")
        mp.setenv("HFWIZARD_SANDBOX_STEP_DELAY", "0")
        seen = asyncio.run(walk(root))
    yield seen, cluster_state(root / "installs" / "highflame")


@pytest.mark.timeout(120)
def test_wizard_by_keys_into_the_sandbox(walked: tuple[dict[str, Any], ClusterState]) -> None:
    seen, state = walked
    # The preflight ran against the emulated cluster the rehearsal driver started; what a rehearsal
    # has none of is skipped, never passed.
    checks = seen["checks"]
    assert checks["kubernetes/api"] == "pass" and checks["kubernetes/nodes"] == "pass"
    assert checks["postgres/reachable"] == "skipped" and checks["redis/reachable"] == "skipped"
    assert "fail" not in checks.values()
    assert set(seen["steps"].values()) == {"done"}
    assert "Highflame is installed in the sandbox" in seen["done"] and f"http://{DOMAIN}/" in seen["done"]
    assert seen["exit"] == 0
    assert {"Deployment/highflame-admin", "Deployment/highflame-guard",
            "StatefulSet/chi-ch-highflame-0-0"} <= set(state.objects)
    platform = {k: v for k, v in state.releases.items() if k.startswith("highflame-")}
    assert len(platform) == 19 and all(r == [(1, "deployed")] for r in platform.values())
    assert state.releases["clickhouse-operator"] == [(1, "deployed")]


# ---- a real process in a real terminal, killed and resumed -------------------------------------------


class Terminal:
    """`hfwizard` in a detached tmux session at 80×24."""

    def __init__(self, state: Path, **env: str) -> None:
        self.session = f"hfw-{uuid.uuid4().hex[:8]}"
        pairs = " ".join(f"{k}={v}" for k, v in {"HFWIZARD_STATE_DIR": str(state), **env}.items())
        # exec: the pane's process is the wizard itself, so its pid is the one to kill.
        cmd = f"cd {ROOT} && unset KUBECONFIG && exec env {pairs} {sys.executable} -m hfwizard"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "80", "-y", "24",
                        "-e", f"TERM={os.environ.get('TERM', 'xterm-256color')}", cmd], check=True)
        self.pid = int(self._tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{texts!r} never appeared; the screen was:\n{screen}")

    def settle(self) -> None:
        """Give a screen just shown a moment to take its first focus: keys sent in the instant of its
        first frame can arrive before it (no person types that fast)."""
        time.sleep(0.5)

    def keys(self, *keys: str, literal: bool = False) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.session, *(["-l"] if literal else []), key], check=True)
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True, check=False)


def _gone(pid: int, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.timeout(150)
def test_killed_mid_install_then_resumed_from_welcome(tmp_path: Path,
                                                      walked: tuple[dict[str, Any], ClusterState]) -> None:
    state = tmp_path / "state"
    install = state / "installs" / "highflame"
    # Slow enough readiness that the platform's Helm wait is still running when the kill comes.
    term = Terminal(state, HFWIZARD_SANDBOX_READY_DELAY="2", HFWIZARD_SANDBOX_STEP_DELAY="0")
    try:
        term.wait_for("New install name")
        term.keys("Enter")
        term.wait_for("Step 1 of 12 · Target")
        term.keys("Down", "Enter", "C-n")
        for title in ("Credentials", "Cluster", "Data services", "Sizing", "Modules"):
            term.wait_for(f"· {title}")
            term.keys("C-n")
        term.wait_for("· Clerk")
        term.settle()
        term.keys(PK, literal=True)
        term.wait_for("Frontend host: clerk.example.test")
        term.keys("C-n")
        term.wait_for("· Ingress and TLS")
        term.settle()
        term.keys("Tab")
        term.keys(DOMAIN, literal=True)
        term.wait_for(DOMAIN)
        term.keys("Tab", "Tab", "Space", "C-n")
        term.wait_for("· Review")
        term.keys("C-n")
        term.wait_for("· Preflight", "0 failed")
        term.keys("C-n")
        # The platform's release is being installed: its row says running and its log is on show.
        screen = term.wait_for("· Install", "─ helm/highflame-", "running")
        os.kill(term.pid, signal.SIGKILL)
        assert _gone(term.pid)
    finally:
        term.close()
    assert "· Install" in screen
    # Earlier steps had finished (the journal says so; at 80×24 their rows may have scrolled out of view).
    assert '"step_finished"' in (install / "journal.jsonl").read_text()
    # The emulator and Helm children went with it (PR_SET_PDEATHSIG): nothing holds the state file.
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", str(install)], capture_output=True, text=True).stdout.split()
    assert leftovers == []

    term = Terminal(state, HFWIZARD_SANDBOX_READY_DELAY="0.2", HFWIZARD_SANDBOX_STEP_DELAY="0")
    try:
        screen = term.wait_for("install interrupted: resumable")
        term.keys("Enter")  # Resume has the focus
        screen = term.wait_for("· Install", "✓ Installed.")
        term.keys("C-n")
        term.wait_for("installed in the sandbox", f"http://{DOMAIN}/")
        term.keys("C-n")
        assert _gone(term.pid)
    finally:
        term.close()

    # Steps verified as done in the first run were skipped, not redone (the list is longer than the screen).
    recs = [json.loads(x) for x in (install / "journal.jsonl").read_text().splitlines() if x.startswith("{")]
    second = max(i for i, r in enumerate(recs) if r["event"] == "install_started")
    done_before = {r["step"] for r in recs[:second] if r["event"] == "step_finished"}
    started_after = {r["step"] for r in recs[second:] if r["event"] == "step_started"}
    assert done_before and not done_before & started_after, done_before & started_after
    resumed = cluster_state(install)
    uninterrupted = walked[1]
    assert resumed.objects == uninterrupted.objects
    assert {name: revs[-1][1] for name, revs in resumed.releases.items()} == {
        name: revs[-1][1] for name, revs in uninterrupted.releases.items()}


async def test_cancel_leaves_a_resumable_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel (Escape) on the Install screen: the engine journals the running step as interrupted and
    the run ends with exit code 3, so the Welcome screen offers Resume."""
    from hfwizard.installs import Install

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HFWIZARD_SANDBOX_READY_DELAY", "3")
    root = tmp_path / "state"
    app = WizardApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        draft = app.open_draft("highflame")
        for path, value in SANDBOX_ANSWERS.items():
            draft.set(path, value)
        app.show("install")
        await _until(pilot, "install-screen")
        screen: Any = app.screen
        end = time.monotonic() + 60
        while getattr(screen.rows.get("helm/clickhouse-operator"), "status", None) != "running":
            assert time.monotonic() < end and screen.outcome is None
            await pilot.pause(0.05)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.outcome is not None and screen.outcome.exit_code == 3
        assert screen.rows["helm/clickhouse-operator"].status == "interrupted"
        assert "resumable" in str(screen.query_one("#install-status").render())
    assert Install(root / "installs" / "highflame").state() == "interrupted"
