"""Plain mode driven through a real pseudo-terminal with pexpect: to a saved profile, and on through
preflight and a sandbox install to the same result the wizard reaches (releases deployed in the
emulated cluster: the Kubernetes API is emulated, kmock + our shim, as no real API server runs here)."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from hfwizard.profile_io import load_profile

ROOT = Path(__file__).resolve().parent.parent
ENTER = "\r"
DOWN = "\x1b[B"


class Terminal(pexpect.spawn):
    """A pseudo-terminal that answers a cursor-position request (ESC [6n) as a terminal emulator does:
    prompt_toolkit sends one at every prompt and, unanswered, waits about a second before going on."""

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> str:
        data = super().read_nonblocking(size, timeout)
        if CPR_REQUEST in data:
            self.send("\x1b[1;1R")
        return data  # type: ignore[no-any-return]


CPR_REQUEST = "\x1b[6n"


def spawn(state: Path, **extra: str) -> pexpect.spawn:
    env = {**os.environ, "HFWIZARD_STATE_DIR": str(state), "TERM": "xterm", "NO_COLOR": "1", **extra}
    env.pop("KUBECONFIG", None)
    return Terminal(sys.executable, ["-m", "hfwizard", "--plain"], cwd=str(ROOT), env=env,
                    encoding="utf-8", timeout=30, dimensions=(24, 80))


def answer(child: pexpect.spawn, prompt: str, text: str | None = None) -> None:
    child.expect(prompt)
    if text is not None:
        child.send("\x15" + text)  # Ctrl-U clears the default first
    child.send(ENTER)


def node_groups(child: pexpect.spawn) -> None:
    for prompt in ("Node label naming a node group", "Node group for most services", "Node group for the guardrail"):
        answer(child, prompt)


def platform_extras(child: pexpect.spawn) -> None:
    """License, model provider and registry mirror (asked after the modules), all left at their defaults."""
    for prompt in ("License token reference", "License public key reference", r"Model provider\b",
                   "Model name at the provider", "Model provider API key reference", "Model provider endpoint",
                   "Registry mirror"):
        answer(child, prompt)


@pytest.mark.timeout(120)
def test_plain_mode_to_a_saved_profile(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = spawn(state)
    answer(child, "Install name", "plain-test")
    child.expect("Where will Highflame run")
    child.send(DOWN)  # from the default ("existing") to "sandbox"
    time.sleep(0.2)
    child.send(ENTER)
    answer(child, "Namespace")
    answer(child, "Helm release name")
    child.expect("Sizing preset")
    child.send(ENTER)  # large (first in the list)
    # A bad value is refused with the model's reason, then a good one is taken.
    child.expect("Worker nodes")
    child.send("\x15" + "3" + ENTER)
    child.expect("greater than or equal to 6")
    child.send("\x15" + "9" + ENTER)
    answer(child, "Cores per node")
    answer(child, "Memory per node")
    answer(child, "Memory per Redis node")
    answer(child, "PostgreSQL vCPUs")
    answer(child, "PostgreSQL memory")
    node_groups(child)
    for i in range(7):
        answer(child, r"Enable .*\?")
        # The replica count (asked as the screen's field beside the switch), typed once.
        answer(child, r": replicas", "3" if i == 0 else None)
    platform_extras(child)
    answer(child, "publishable key", "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA")
    answer(child, "secret key reference", "sk_live_NOTAREF")
    child.expect("secret reference")
    assert "sk_live_NOTAREF" not in child.before  # the secret prompt is masked: a pasted secret is not echoed
    child.send("\x15" + "env:CLERK_SECRET_KEY" + ENTER)
    answer(child, r"Create an Ingress\?")
    answer(child, "Public domain", "hf.sandbox.local")
    answer(child, "Ingress class")
    child.expect(r"Serve TLS\?")
    child.send("n")  # a confirm takes y / n without Enter
    child.expect("saved profile: ")
    child.expect(r"Run preflight checks now\?")
    child.send("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    loaded = load_profile(state / "installs" / "plain-test" / "profile.yaml").profile
    assert loaded.target.cloud.value == "sandbox"
    assert loaded.sizing.nodes.count == 9
    assert loaded.modules.guardrails.replicas == 3
    assert loaded.clerk.secret_key == "env:CLERK_SECRET_KEY"
    text = (state / "installs" / "plain-test" / "profile.yaml").read_text()
    assert "sk_live_NOTAREF" not in text


CANARY = "sk_test_CANARYplainmode7f2e"


@pytest.mark.timeout(180)
def test_plain_mode_through_preflight_and_a_sandbox_install(tmp_path: Path) -> None:
    from hfwizard.sandbox.emulator import ClusterThread
    from hfwizard.sandbox.rehearsal import STATE_FILE
    from tests.engine_support import release_revisions, snapshot

    state = tmp_path / "state"
    from tests.platform_support import CHARTS, CHARTS_MISSING

    if not (CHARTS / "index.yaml").is_file():
        pytest.skip(CHARTS_MISSING)
    child = spawn(state, CLERK_SECRET_KEY=CANARY, HFWIZARD_SANDBOX_READY_DELAY="0.1",
                  HFWIZARD_SANDBOX_STEP_DELAY="0", HFWIZARD_SANDBOX_CHARTS=str(CHARTS))
    child.timeout = 90
    answer(child, "Install name", "plain-e2e")
    child.expect("Where will Highflame run")
    child.send(DOWN)  # "existing" -> "sandbox"
    time.sleep(0.2)
    child.send(ENTER)
    answer(child, "Namespace")
    answer(child, "Helm release name")
    answer(child, "Sizing preset")
    for prompt in ("Worker nodes", "Cores per node", "Memory per node", "Memory per Redis node",
                   "PostgreSQL vCPUs", "PostgreSQL memory"):
        answer(child, prompt)
    node_groups(child)
    for _ in range(7):
        answer(child, r"Enable .*\?")
        answer(child, r": replicas")
    platform_extras(child)
    answer(child, "publishable key", "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA")
    answer(child, "secret key reference", "env:CLERK_SECRET_KEY")
    answer(child, r"Create an Ingress\?")
    answer(child, "Public domain", "hf.sandbox.local")
    answer(child, "Ingress class")
    child.expect(r"Serve TLS\?")
    child.send("n")
    child.expect(r"Run preflight checks now\?")
    child.send("y")
    child.expect(r"preflight: \d+ passed, \d+ warnings, 0 failed, \d+ skipped")
    preflight_out = child.before
    child.expect(r"Install now\?")
    child.send("y")
    child.expect("install ok")
    child.expect(pexpect.EOF)
    out = preflight_out + child.before
    child.close()
    assert child.exitstatus == 0, out
    assert "[ok  ] kubernetes/api" in preflight_out
    # The skipped checks come last, folded into one (wrapped) line after the passes.
    skipped = preflight_out[preflight_out.index("[skip] "):]
    assert "[ok  ]" not in skipped and "postgres/" in skipped and "sandbox: rehearsal, not checked" in skipped
    assert CANARY not in out, "the Clerk secret key leaked into plain mode's output"
    install = state / "installs" / "plain-e2e"
    with ClusterThread(controllers=False, state_file=install / STATE_FILE) as cluster:
        releases = release_revisions(cluster)
        objects = snapshot(cluster)
    platform = {k: v for k, v in releases.items() if k.startswith("highflame-")}
    assert len(platform) == 19 and all(revs == [(1, "deployed")] for revs in platform.values()), releases
    assert releases["clickhouse-operator"] == [(1, "deployed")]
    assert {"Deployment/highflame-admin", "Deployment/highflame-guard",
            "StatefulSet/chi-ch-highflame-0-0"} <= set(objects)
    # A rehearsal resolves the Clerk reference (so a wrong one fails) and then writes a placeholder: no file
    # the install wrote holds the secret, the emulated cluster's own store included, in clear or base64.
    encoded = base64.b64encode(CANARY.encode())
    for path in install.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CANARY.encode() not in data and encoded not in data, f"{path.name} holds the secret"
    placeholder = base64.b64encode(b"rehearsal-placeholder")
    assert placeholder in (install / STATE_FILE).read_bytes(), "the Clerk reference made no Secret entry"
