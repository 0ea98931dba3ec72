"""`hfwizard sandbox`: the whole install rehearsed into an emulated cluster run as a child process.

The emulator keeps its objects in a state file inside the install's state dir, so a rehearsal killed
outright (even SIGKILL) is carried on by `hfwizard resume` exactly like a real install: the emulator is
started again from that file and the engine resumes from its journal.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from hfwizard.errors import HfwizardError
from hfwizard.installs import PROFILE_FILE
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import load_profile, save_profile
from hfwizard.state import install_dir

STATE_FILE = "cluster-state.json"
KUBECONFIG_FILE = "kubeconfig"
BANNER = ("REHEARSAL: installing the bundled reference charts into an emulated Kubernetes cluster on this "
          "machine. No cloud, no real cluster, no data services are touched.")


def sandbox_profile(idir: Path) -> InstallProfile:
    """The bundled sandbox profile, pointed at the emulator's kubeconfig in the install's state dir."""
    text = resources.files("hfwizard.profiles").joinpath("sandbox.yaml")
    profile = load_profile(Path(str(text))).profile
    profile.target.kubeconfig = str(idir / KUBECONFIG_FILE)
    profile.target.context = "sandbox"
    return profile


def _die_with_parent() -> None:
    # The emulator must not outlive the rehearsal: PR_SET_PDEATHSIG (1) sends it SIGTERM when we go.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


@contextlib.contextmanager
def emulator(idir: Path, *, ready_delay: float, step_delay: float) -> Iterator[subprocess.Popen[str]]:
    """Start the emulated cluster (state kept in `idir`), wait until it serves, stop it afterwards."""
    cmd = [sys.executable, "-m", "hfwizard.sandbox.emulator", "--state", str(idir / STATE_FILE),
           "--port", "0", "--kubeconfig", str(idir / KUBECONFIG_FILE),
           "--ready-delay", str(ready_delay), "--step-delay", str(step_delay)]
    log = open(idir / "emulator.log", "a", encoding="utf-8")  # noqa: SIM115 - closed below
    os.chmod(idir / "emulator.log", 0o600)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=_die_with_parent)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        try:
            ready = json.loads(line)
        except ValueError:
            ready = {}
        if ready.get("event") != "ready":
            raise HfwizardError("the emulated cluster did not start", remedy=f"see {idir / 'emulator.log'}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_sandbox(state_root: Path, *, json: bool, profile: InstallProfile | None = None,
                ready_delay: float | None = None, step_delay: float | None = None) -> int:
    """Install (or resume installing) the sandbox rehearsal; returns the exit code."""
    from hfwizard.engine.console import RunSettings, run_install

    idir = install_dir(state_root, "sandbox")
    if profile is None:
        profile = sandbox_profile(idir)
        save_profile(idir / PROFILE_FILE, profile)
    # Short, visible delays: the progress bars move as they would on a cluster, only faster.
    rd = float(os.environ.get("HFWIZARD_SANDBOX_READY_DELAY", "0.5")) if ready_delay is None else ready_delay
    sd = float(os.environ.get("HFWIZARD_SANDBOX_STEP_DELAY", "0.1")) if step_delay is None else step_delay
    kubeconfig = str(idir / KUBECONFIG_FILE)
    with emulator(idir, ready_delay=rd, step_delay=sd):
        # Always the emulator's kubeconfig: a rehearsal never reaches for $KUBECONFIG's real cluster.
        return run_install(profile, idir, RunSettings(json=json, kubeconfig=kubeconfig, context="sandbox",
                                                      replan=False, banner=BANNER))
