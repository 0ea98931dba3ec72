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
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from hfwizard.errors import BadInput, HfwizardError
from hfwizard.profile import Cloud, InstallProfile
from hfwizard.profile_io import load_profile
from hfwizard.state import atomic_write

STATE_FILE = "cluster-state.json"
EMULATOR_PID_FILE = "emulator.pid"  # the running emulator, so a later run can wait for a killed run's one
KUBECONFIG_FILE = "kubeconfig"
CONTEXT = "sandbox"  # the context the emulator writes into its kubeconfig
BANNER = ("REHEARSAL: installing Highflame's real charts into an emulated Kubernetes cluster on this "
          "machine. No cloud, no real cluster, no data services are touched; secrets become placeholders.")


def sandbox_profile(idir: Path, base: InstallProfile | None = None, charts: Path | None = None) -> InstallProfile:
    """The profile a rehearsal installs: `base` (the operator's own, its cloud played by the emulator) or the
    bundled default, pointed at the emulator's kubeconfig in the install's state dir.

    Charts come from `charts` (a mirror folder: index.yaml and tarballs), else as the charts step decides
    for a rehearsal ($HFWIZARD_SANDBOX_CHARTS, the install's cache, the profile's mirror or repository).
    """
    if base is None:
        text = resources.files("hfwizard.profiles").joinpath("sandbox.yaml")
        profile = load_profile(Path(str(text))).profile
    else:
        profile = base.model_copy(deep=True)
        if not profile.is_sandbox:
            profile.target.rehearses = profile.target.cloud
            profile.target.cloud = Cloud.SANDBOX
    profile.target.kubeconfig = str(idir / KUBECONFIG_FILE)
    profile.target.context = CONTEXT
    if charts is not None:
        if not (charts / "index.yaml").is_file():
            raise BadInput(f"--charts {charts}: no index.yaml there",
                           remedy="pass a mirror folder (index.yaml and chart tarballs), e.g. one written by "
                                  "`hfwizard charts pull --to DIR`")
        profile.charts.mirror = str(charts.resolve())
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


_NODE_CPU_MILLIS = 16000
_NODE_MEMORY = 32 * 2**30
_ALLOCATABLE_MEMORY = _NODE_MEMORY - 512 * 2**20  # what the emulator's kubelet leaves allocatable
_EMULATED_CLOUD = {Cloud.AWS: "eks", Cloud.GCP: "gke", Cloud.AZURE: "aks"}


def emulator_seed(profile: InstallProfile | None) -> list[str]:
    """Emulator arguments for a cluster that can run the profile's platform: the cloud's node labels, the
    profile's IngressClass and own registries (see operator_registries), and enough 16-core / 32 GiB nodes
    in each node group (general, and tainted gpu nodes for the guardrail models) for the services'
    requests at minimum scale plus one node of room for a rolling upgrade's surge pods. Sized from
    sizing.nodeGroups via the same sums preflight uses."""
    if profile is None:
        return ["--ingress-class", "nginx"]
    from hfwizard.engine.plan import values_profile
    from hfwizard.platform.sizing import node_group_requests

    vp = values_profile(profile)
    groups = profile.sizing.node_groups
    counts = {groups.general: 6, groups.gpu: 0}
    for req in node_group_requests(vp):
        value = req.label.partition("=")[2]
        per_node = max(1, min(_NODE_CPU_MILLIS // max(req.largest_cpu_millis, 1),
                              _ALLOCATABLE_MEMORY // max(req.largest_memory_bytes, 1)))
        need = -(-req.pods // per_node) + 1
        counts[value] = max(counts.get(value, 0), need)
    args = ["--cloud", _EMULATED_CLOUD.get(vp.target.cloud, "generic"),
            "--workers", str(counts[groups.general]), "--gpu-nodes", str(counts[groups.gpu]),
            "--cpu", str(_NODE_CPU_MILLIS // 1000), "--memory", f"{_NODE_MEMORY // 2**30}Gi"]
    if profile.ingress.enabled and profile.ingress.class_name:
        args += ["--ingress-class", profile.ingress.class_name]
    for registry in operator_registries(profile):
        args += ["--operator-registry", registry]
    return args


def operator_registries(profile: InstallProfile) -> list[str]:
    """The registries (host[:port]) the operator runs for this profile's images: a rehearsal cannot stand in
    for them, so the emulated nodes try them for real (images.mirror, clickhouse.imageRegistry)."""
    found = [m.split("/", 1)[0] for m in (profile.images.mirror, profile.clickhouse.image_registry) if m]
    return list(dict.fromkeys(found))


def start_emulator(idir: Path, *, ready_delay: float, step_delay: float,
                   seed: list[str] | None = None) -> subprocess.Popen[str]:
    """Spawn the emulated cluster (state kept in `idir`); it is not serving until `wait_ready` returns.

    Spawning does not block, so an event loop may call it; PR_SET_PDEATHSIG ties the child to the
    calling *thread*, so call it from a thread that lives as long as the cluster is needed.
    """
    cmd = [sys.executable, "-m", "hfwizard.sandbox.emulator", "--state", str(idir / STATE_FILE),
           "--port", "0", "--kubeconfig", str(_run_kubeconfig(idir)), "--context", CONTEXT,
           "--ready-delay", str(ready_delay), "--step-delay", str(step_delay),
           *(seed if seed is not None else emulator_seed(None))]
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


# What the rehearsal needs next (preflight's Kubernetes checks, the engine; the Kubernetes client alone
# takes 0.4 s to import): imported on a thread while the emulator boots, when this process has nothing
# else to do, rather than after. Only a head start: a failure here is met again, and reported, where the
# module is used.
_WARM = ("kubernetes.client", "hfwizard.checks.kubernetes", "hfwizard.preflight", "hfwizard.engine.engine")


def _warm_imports() -> None:
    def run() -> None:
        for name in _WARM:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    threading.Thread(target=run, name="warm-imports", daemon=True).start()


@contextlib.asynccontextmanager
async def running_emulator(idir: Path, *, ready_delay: float | None = None, step_delay: float | None = None,
                           profile: InstallProfile | None = None) -> AsyncIterator[str]:
    """Start the emulated cluster (state kept in `idir`), wait until it serves, stop it afterwards; yields
    the kubeconfig path. The event loop never blocks on it. `profile` seeds a fresh cluster (see
    `emulator_seed`), so the rehearsal schedules what the real cluster would.

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
        proc = start_emulator(idir, ready_delay=rd, step_delay=sd, seed=emulator_seed(profile))
        _warm_imports()
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
