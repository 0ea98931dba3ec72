"""Engine overhead against the same Helm calls made directly, and the cost of a resume at the last step.

Each measurement gets a fresh emulated cluster (kmock + shim, controller player with a 0.2 s ready
delay) and the same embedded Helm backend making the same two calls (same charts, values, `wait`, no
`create_namespace`: the baseline's namespace exists beforehand, so the engine's namespace step counts
as overhead), so the ratio isolates what the engine adds: namespace, Secrets, lock (file + Lease),
journal fsyncs, readiness polling, verification. Baseline and engine alternate which goes first.
Both use `EmbeddedHelm(kubeconfig, context)` exactly as the engine makes it. The engine starts its
first Helm child ahead (`prewarm()`), so that it loads Helm while the engine imports the kubernetes
client and runs its first steps; the baseline has no such work to overlap (a `prewarm()` just before
its first call would gain nothing), so it simply calls. Both close the backend inside their timing.

- warm: in this process, with the kubernetes client imported before any timing (the baseline's own
  modules are imported at the top of this file, so neither side pays imports inside its timing);
- cold: each side in a fresh interpreter, imports and profile set-up included, as an operator's
  first command pays them.

    .venv/bin/python benchmarks/bench_engine.py [--runs 5] [--cold-runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hfwizard import values
from hfwizard.engine.engine import Engine, EngineOptions, chart_ref
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.events import StepFinished, StepStarted
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.rehearsal import sandbox_profile

LAST = "helm/highflame"


def _cluster() -> ClusterThread:
    ct = ClusterThread(controllers=True, ready_delay=0.2).start()
    ct.call(lambda c: c.seed_default(ingress_classes=("nginx",)))
    return ct


def _precreate_namespace(ct: ClusterThread, namespace: str) -> None:
    """The baseline's namespace, made before its timing starts (as a script would find it)."""
    ct.call(lambda c: c.emulator.upsert({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))


def _profile(tmp: Path, ct: ClusterThread) -> InstallProfile:
    kc = ct.write_kubeconfig(tmp / "kubeconfig")
    profile = sandbox_profile(tmp)
    profile.target.kubeconfig = str(kc)
    return profile


async def engine_run(profile: InstallProfile, idir: Path, *,
                     cancel_at: str | None = None) -> tuple[float, dict[str, float]]:
    engine = Engine(profile, idir, options=EngineOptions(kubeconfig=profile.target.kubeconfig, context="sandbox"))
    steps: dict[str, float] = {}
    began: dict[str, float] = {}
    t0 = time.perf_counter()
    async for ev in engine.run():
        if isinstance(ev, StepStarted):
            began[ev.step_id] = time.perf_counter()
            if ev.step_id == cancel_at:
                engine.cancel()
        elif isinstance(ev, StepFinished) and ev.step_id in began:
            steps[ev.step_id] = time.perf_counter() - began[ev.step_id]
    return time.perf_counter() - t0, steps


async def baseline_run(profile: InstallProfile) -> float:
    """The same Helm calls, made directly: upgrade --install of ClickHouse, then of the platform, with
    the arguments the engine passes (wait, no create_namespace: the namespace is made beforehand)."""
    t0 = time.perf_counter()
    async with EmbeddedHelm(profile.target.kubeconfig, "sandbox") as helm:
        for rel in values.releases(profile):
            await helm.install_or_upgrade(rel.release, chart_ref(rel), profile.target.namespace, rel.values,
                                          version=rel.chart_version, wait=True, timeout_s=300)
    return time.perf_counter() - t0


# A fresh interpreter per cold measurement: argv is (kind, tmp dir, kubeconfig). Both sides import
# what they use and build the profile inside the timing.
_COLD = """
import asyncio, sys
from pathlib import Path
kind, tmp, kubeconfig = sys.argv[1:4]
from hfwizard.sandbox.rehearsal import sandbox_profile
profile = sandbox_profile(Path(tmp))
profile.target.kubeconfig = kubeconfig
if kind == "baseline":
    from hfwizard import values
    from hfwizard.engine.engine import chart_ref
    from hfwizard.engine.helm_embedded import EmbeddedHelm

    async def run():
        async with EmbeddedHelm(kubeconfig, "sandbox") as helm:
            for rel in values.releases(profile):
                await helm.install_or_upgrade(rel.release, chart_ref(rel), profile.target.namespace,
                                              rel.values, version=rel.chart_version, wait=True, timeout_s=300)
else:
    from hfwizard.engine.engine import Engine, EngineOptions

    async def run():
        engine = Engine(profile, Path(tmp) / "install",
                        options=EngineOptions(kubeconfig=kubeconfig, context="sandbox"))
        async for _ in engine.run():
            pass
        assert engine.exit_code == 0, engine.exit_code
asyncio.run(run())
"""


def cold_run(kind: str) -> float:
    ct = _cluster()
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            profile = _profile(tmp, ct)
            if kind == "baseline":
                _precreate_namespace(ct, profile.target.namespace)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", _COLD, kind, str(tmp), str(profile.target.kubeconfig)],
                           check=True, cwd=Path(__file__).resolve().parent.parent)
            return time.perf_counter() - t0
    finally:
        ct.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    _warm_up()
    eng, base, resume, alone = [], [], [], []
    for i in range(args.runs):
        order = ("baseline", "engine") if i % 2 == 0 else ("engine", "baseline")
        for kind in (*order, "resume"):
            ct = _cluster()
            try:
                with tempfile.TemporaryDirectory() as d:
                    tmp = Path(d)
                    profile = _profile(tmp, ct)
                    if kind == "baseline":
                        _precreate_namespace(ct, profile.target.namespace)
                        base.append(asyncio.run(baseline_run(profile)))
                    elif kind == "engine":
                        total, steps = asyncio.run(engine_run(profile, tmp / "install"))
                        eng.append(total)
                        alone.append(steps[LAST])
                    else:
                        asyncio.run(engine_run(profile, tmp / "install", cancel_at=LAST))
                        total, _ = asyncio.run(engine_run(profile, tmp / "install"))
                        resume.append(total)
            finally:
                ct.stop()
        print(f"run {i + 1}: baseline {base[-1]:.2f}s engine {eng[-1]:.2f}s "
              f"resume {resume[-1]:.2f}s last step alone {alone[-1]:.2f}s", flush=True)
    cold_base: list[float] = []
    cold_eng: list[float] = []
    for i in range(args.cold_runs):
        for kind in (("baseline", "engine") if i % 2 == 0 else ("engine", "baseline")):
            (cold_base if kind == "baseline" else cold_eng).append(cold_run(kind))
        print(f"cold run {i + 1}: baseline {cold_base[-1]:.2f}s engine {cold_eng[-1]:.2f}s", flush=True)
    mb, me, mr, ma = (statistics.median(x) for x in (base, eng, resume, alone))
    print(f"warm, median of {args.runs}: baseline {mb:.2f}s, engine {me:.2f}s -> overhead ratio {me / mb:.3f}")
    if args.cold_runs:
        cb, ce = statistics.median(cold_base), statistics.median(cold_eng)
        print(f"cold, median of {args.cold_runs}: baseline {cb:.2f}s, engine {ce:.2f}s -> overhead ratio {ce / cb:.3f}")
    print(f"median of {args.runs}: resume after interruption at {LAST} {mr:.2f}s, "
          f"{LAST} alone {ma:.2f}s -> ratio {mr / ma:.3f}")



def _warm_up() -> None:
    """The engine's one lazy import, the kubernetes client, paid here rather than inside the first
    timed engine run (the cold runs report what it costs an operator)."""
    from hfwizard.engine.kube import Kube, connect

    ct = _cluster()
    try:
        with tempfile.TemporaryDirectory() as d:
            Kube(connect(str(ct.write_kubeconfig(Path(d) / "kubeconfig")), "sandbox"))
    finally:
        ct.stop()

if __name__ == "__main__":
    main()
