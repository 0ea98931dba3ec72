"""`hfwizard sandbox`: the emulated cluster, run as a child process, that a rehearsal installs into.

hfwizard.operations runs the rehearsal (sandbox_run) and the front ends render it; nothing here calls
a front end. The emulator keeps its objects in a state file inside the install's state dir, so a
rehearsal killed outright (even SIGKILL) is carried on by `hfwizard resume` exactly like a real
install: the emulator is started again from that file and the engine resumes from its journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from hfwizard.errors import HfwizardError
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import load_profile

STATE_FILE = "cluster-state.json"
KUBECONFIG_FILE = "kubeconfig"
CONTEXT = "sandbox"  # the context the emulator writes into its kubeconfig
BANNER = ("REHEARSAL: installing the bundled reference charts into an emulated Kubernetes cluster on this "
          "machine. No cloud, no real cluster, no data services are touched.")


def sandbox_profile(idir: Path) -> InstallProfile:
    """The bundled sandbox profile, pointed at the emulator's kubeconfig in the install's state dir."""
    text = resources.files("hfwizard.profiles").joinpath("sandbox.yaml")
    profile = load_profile(Path(str(text))).profile
    profile.target.kubeconfig = str(idir / KUBECONFIG_FILE)
    profile.target.context = CONTEXT
    return profile


def _die_with_parent() -> None:
    # The emulator must not outlive the rehearsal: PR_SET_PDEATHSIG (1) sends it SIGTERM when we go.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def delays(ready_delay: float | None = None, step_delay: float | None = None) -> tuple[float, float]:
    """The controller player's (ready delay, step delay): the arguments, else the environment's, else short
    visible ones, so the progress bars move as they would on a cluster, only faster."""
    rd = float(os.environ.get("HFWIZARD_SANDBOX_READY_DELAY", "0.5")) if ready_delay is None else ready_delay
    sd = float(os.environ.get("HFWIZARD_SANDBOX_STEP_DELAY", "0.1")) if step_delay is None else step_delay
    return rd, sd


def start_emulator(idir: Path, *, ready_delay: float, step_delay: float) -> subprocess.Popen[str]:
    """Spawn the emulated cluster (state kept in `idir`); it is not serving until `wait_ready` returns.

    Spawning does not block, so an event loop may call it; PR_SET_PDEATHSIG ties the child to the
    calling *thread*, so call it from a thread that lives as long as the cluster is needed.
    """
    cmd = [sys.executable, "-m", "hfwizard.sandbox.emulator", "--state", str(idir / STATE_FILE),
           "--port", "0", "--kubeconfig", str(idir / KUBECONFIG_FILE), "--context", CONTEXT,
           "--ready-delay", str(ready_delay), "--step-delay", str(step_delay),
           # The sandbox profile asks for className nginx: rehearse a cluster whose ingress-nginx is installed.
           "--ingress-class", "nginx"]
    with open(idir / "emulator.log", "a", encoding="utf-8") as log:  # the child keeps its own copy
        os.chmod(idir / "emulator.log", 0o600)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                                preexec_fn=_die_with_parent)


def wait_ready(proc: subprocess.Popen[str], idir: Path) -> None:
    """Block until the emulator says it serves (its kubeconfig is then written); raise if it never does."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {}
    if ready.get("event") != "ready":
        stop_emulator(proc)
        raise HfwizardError("the emulated cluster did not start", remedy=f"see {idir / 'emulator.log'}")


def stop_emulator(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the emulator saves its state and exits), SIGKILL if it has not gone within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.asynccontextmanager
async def running_emulator(idir: Path, *, ready_delay: float | None = None,
                           step_delay: float | None = None) -> AsyncIterator[str]:
    """Start the emulated cluster (state kept in `idir`), wait until it serves, stop it afterwards; yields
    the kubeconfig path. The event loop never blocks on it.

    Spawned on the loop's thread (see start_emulator); the waits run in worker threads.
    """
    rd, sd = delays(ready_delay, step_delay)
    proc = start_emulator(idir, ready_delay=rd, step_delay=sd)
    try:
        await asyncio.to_thread(wait_ready, proc, idir)
        yield str(idir / KUBECONFIG_FILE)
    finally:
        # SIGTERM at once, so the emulator goes even when this wait is cancelled in its turn.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(stop_emulator, proc)
