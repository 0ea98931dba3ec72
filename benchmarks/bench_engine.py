"""Engine overhead against the same Helm calls made directly, and the cost of a resume at the last step.

Both sides run in this one process against a fresh emulated cluster each (kmock + shim, controller
player with a 0.2 s ready delay), with the same embedded Helm backend, so the ratio isolates what the
engine adds: namespace, Secrets, lock (file + Lease), journal fsyncs, readiness polling, verification.

    .venv/bin/python benchmarks/bench_engine.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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
    ct.call(lambda c: c.seed_default())
    return ct


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
    """The same Helm calls, made directly: upgrade --install of ClickHouse, then of the platform."""
    helm = EmbeddedHelm(profile.target.kubeconfig, "sandbox")
    t0 = time.perf_counter()
    for rel in values.releases(profile):
        await helm.install_or_upgrade(rel.release, chart_ref(rel), profile.target.namespace, rel.values,
                                      wait=True, timeout_s=300, create_namespace=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    eng, base, resume, alone = [], [], [], []
    for i in range(args.runs):
        for kind in ("baseline", "engine", "resume"):
            ct = _cluster()
            try:
                with tempfile.TemporaryDirectory() as d:
                    tmp = Path(d)
                    profile = _profile(tmp, ct)
                    if kind == "baseline":
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
    mb, me, mr, ma = (statistics.median(x) for x in (base, eng, resume, alone))
    print(f"median of {args.runs}: baseline {mb:.2f}s, engine {me:.2f}s -> overhead ratio {me / mb:.3f}")
    print(f"median of {args.runs}: resume after interruption at {LAST} {mr:.2f}s, "
          f"{LAST} alone {ma:.2f}s -> ratio {mr / ma:.3f}")


if __name__ == "__main__":
    main()
