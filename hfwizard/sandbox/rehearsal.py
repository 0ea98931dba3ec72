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
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from hfwizard.errors import HfwizardError
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import load_profile
from hfwizard.state import atomic_write

STATE_FILE = "cluster-state.json"
EMULATOR_PID_FILE = "emulator.pid"  # the running emulator, so a later run can wait for a killed run's one
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
           "--port", "0", "--kubeconfig", str(_run_kubeconfig(idir)), "--context", CONTEXT,
           "--ready-delay", str(ready_delay), "--step-delay", str(step_delay),
           # The sandbox profile asks for className nginx: rehearse a cluster whose ingress-nginx is installed.
           "--ingress-class", "nginx",
           # Its guardrails module selects a GPU node group (preflight's kubernetes/node-groups): eight
           # tainted GPU nodes hold the guard services' requests up to the large preset.
           "--gpu-nodes", "8"]
    with open(idir / "emulator.log", "a", encoding="utf-8") as log:  # the child keeps its own copy
        os.chmod(idir / "emulator.log", 0o600)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                                preexec_fn=_die_with_parent)


def _run_kubeconfig(idir: Path) -> Path:
    """This run's own kubeconfig: the emulator writes it here, and `wait_ready` publishes it whole."""
    return idir / f".{KUBECONFIG_FILE}.{os.getpid()}"


def wait_ready(proc: subprocess.Popen[str], idir: Path) -> None:
    """Block until the emulator says it serves, then publish its kubeconfig as `idir/kubeconfig` in one
    rename (a reader never sees a half-written file or another run's port); raise if it never serves."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {}
    if ready.get("event") != "ready":
        stop_emulator(proc)
        raise HfwizardError("the emulated cluster did not start", remedy=f"see {idir / 'emulator.log'}")
    os.replace(_run_kubeconfig(idir), idir / KUBECONFIG_FILE)


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


def _await_orphan(idir: Path, grace: float = 15.0) -> None:
    """Let the emulator of a killed run finish saving before a new one loads the same state file.

    Its parent's death sends it SIGTERM (PR_SET_PDEATHSIG) and it saves and exits, but the install lock
    went with the parent at once: a new run could otherwise load the state while the orphan still writes
    it, and the orphan's late save would then overwrite the new run's. SIGKILL if it lingers."""
    try:
        pid = int((idir / EMULATOR_PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return  # no earlier emulator, or it is gone
    if str(idir / STATE_FILE).encode() not in cmdline:
        return  # the pid was reused by an unrelated process
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return  # exited; only its parent's reaping is left
        except (OSError, IndexError):
            return
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def running_emulator(idir: Path, *, ready_delay: float | None = None,
                           step_delay: float | None = None) -> AsyncIterator[str]:
    """Start the emulated cluster (state kept in `idir`), wait until it serves, stop it afterwards; yields
    the kubeconfig path. The event loop never blocks on it.

    The install's file lock is taken first, before anything starts (LockHeld, exit 4, when another
    process runs this install): the emulator, its state file and its kubeconfig belong to one run at a
    time. The run's own InstallLock joins it. Spawned on the loop's thread (see start_emulator); the
    waits run in worker threads.
    """
    from hfwizard.engine.lock import take_early
    from hfwizard.store.install_dir import InstallDir

    rd, sd = delays(ready_delay, step_delay)
    with take_early(InstallDir(idir), idir.name):
        for stale in idir.glob(f".{KUBECONFIG_FILE}.*"):  # a run killed between write and publish
            with contextlib.suppress(OSError):
                stale.unlink()
        await asyncio.to_thread(_await_orphan, idir)
        proc = start_emulator(idir, ready_delay=rd, step_delay=sd)
        atomic_write(idir / EMULATOR_PID_FILE, str(proc.pid))
        try:
            await asyncio.to_thread(wait_ready, proc, idir)
            yield str(idir / KUBECONFIG_FILE)
        finally:
            # SIGTERM at once, so the emulator goes even when this wait is cancelled in its turn.
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(stop_emulator, proc)
            with contextlib.suppress(OSError):
                _run_kubeconfig(idir).unlink()  # left only by an emulator that never served
