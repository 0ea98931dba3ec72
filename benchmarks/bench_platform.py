"""The whole real platform into the emulator: `hfwizard sandbox` against the documented procedure, same run.

Both sides install Highflame's 19 releases (AWS values, the charts of ../shared/highflame/charts) into the
same kind of emulated cluster (the emulator as its own process, seeded alike, controller player with a 1 s
readiness delay), with the same embedded Helm:

- hfwizard: `hfwizard sandbox --charts DIR` as a process, timed whole (emulator start, preflight, charts,
  Secrets, every release along the dependency graph, bounded by install.maxParallel, verification);
  the peak memory is the sum of the RSS of its process tree (hfwizard, its Helm children, the emulator),
  sampled every 20 ms from /proc.
- documented procedure: the guide's way. Highflame's prerequisites first: the Altinity operator as
  Altinity documents it (`helm upgrade --install --wait`, the chart's defaults: its CRD hook Job applies
  the CRDs, where hfwizard applies the chart's crds/ itself and turns the hook off), then ClickHouse's
  objects applied and waited for one step after the other (Keeper, server, setup Job, backup CronJob:
  hfwizard's own object steps, run in sequence); then one
  `helm upgrade --install --wait` per service in the guide's order (the catalog order), one after the
  other. Timed over these; its namespace and Secrets are made beforehand, untimed (the guide has them made
  by hand first).

    .venv/bin/python benchmarks/bench_platform.py [--runs 1] [--ready-delay 1.0] [--charts DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proctree import tree_rss  # beside this script

from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.engine.helm import ChartRef
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.engine.plan import Plan, StepKind, build_plan
from hfwizard.engine.plan_clickhouse import OPERATOR_RELEASE
from hfwizard.platform.charts import ChartSource
from hfwizard.profile import InstallProfile
from hfwizard.sandbox import rehearsal


def _default_charts() -> Path:
    """$HFWIZARD_HIGHFLAME_DIR/charts, else `shared/highflame/charts` in a folder above the checkout."""
    if os.environ.get("HFWIZARD_HIGHFLAME_DIR"):
        return Path(os.environ["HFWIZARD_HIGHFLAME_DIR"]) / "charts"
    for up in Path(__file__).resolve().parents:
        if (up / "shared" / "highflame" / "charts").is_dir():
            return up / "shared" / "highflame" / "charts"
    return Path("shared/highflame/charts")


def run_hfwizard(charts: Path, ready_delay: float) -> tuple[float, int]:
    """(seconds, peak bytes of the process tree) of one `hfwizard sandbox` of the whole platform."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env.update(HFWIZARD_SANDBOX_READY_DELAY=str(ready_delay), HFWIZARD_SANDBOX_STEP_DELAY="0")
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "sandbox", "--json", "--charts", str(charts),
                                 "--state-dir", str(Path(tmp) / "state")], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate(timeout=1800)
        elapsed = time.monotonic() - start
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"hfwizard sandbox failed ({proc.returncode}): {err.decode()[-2000:]}")
        return elapsed, peak[0]


async def _documented(charts: Path, ready_delay: float, tmp: Path) -> float:
    """Seconds of one `helm upgrade --install --wait` per service, in order, into a fresh emulator."""
    idir = tmp / "documented"
    idir.mkdir()
    profile = rehearsal.sandbox_profile(idir, charts=charts)
    async with rehearsal.running_emulator(idir, ready_delay=ready_delay, step_delay=0.0,
                                          profile=profile) as kubeconfig:
        full = build_plan(profile)
        # Namespace and Secrets first, untimed: the guide has them made by hand before any chart.
        setup = Plan(full.namespace, tuple(s for s in full.steps if s.kind in (StepKind.NAMESPACE, StepKind.SECRETS,
                                                                             StepKind.DATABASES, StepKind.CHARTS)))
        await _engine(profile, idir, setup, kubeconfig)
        source = ChartSource(str(charts))
        paths = {(r.chart, r.version): source.fetch(r.chart, r.version).path for r in full.releases}
        helm = EmbeddedHelm(kubeconfig, rehearsal.CONTEXT, per_call=True)  # a `helm` process per command
        operator = [r for r in full.releases if r.release == OPERATOR_RELEASE]
        services = [r for r in full.releases if r.release != OPERATOR_RELEASE]
        # ClickHouse's objects, each step after the one before (as a person applies and waits by hand).
        objects = [s for s in full.steps if s.kind is StepKind.OBJECTS]
        chained = tuple(replace(s, depends_on=(objects[i - 1].id,) if i else ()) for i, s in enumerate(objects))
        start = time.monotonic()
        try:
            for rel in operator:  # the chart's defaults: no crdHook override
                defaults = {k: v for k, v in rel.values.items() if k != "crdHook"}
                await helm.install_or_upgrade(rel.release, ChartRef(str(paths[(rel.chart, rel.version)])),
                                              full.namespace, defaults, wait=True, timeout_s=600)
            if chained:
                await _engine(profile, idir, Plan(full.namespace, chained), kubeconfig)
            for rel in services:
                await helm.install_or_upgrade(rel.release, ChartRef(str(paths[(rel.chart, rel.version)])),
                                              full.namespace, rel.values, wait=True, timeout_s=600)
        finally:
            await helm.aclose()
        return time.monotonic() - start


async def _engine(profile: InstallProfile, idir: Path, plan: Plan, kubeconfig: str) -> None:
    engine = Engine(profile, idir, plan=plan, options=EngineOptions(kubeconfig=kubeconfig, context=rehearsal.CONTEXT))
    async for _ in engine.run():
        pass
    if engine.exit_code != 0:
        raise SystemExit(f"the documented procedure's steps {plan.ids} failed")


def run_documented(charts: Path, ready_delay: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_documented(charts, ready_delay, Path(tmp)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--ready-delay", type=float, default=1.0)
    parser.add_argument("--charts", type=Path, default=_default_charts())
    args = parser.parse_args()
    if not (args.charts / "index.yaml").is_file():
        raise SystemExit(f"no chart mirror at {args.charts} (index.yaml); pass --charts DIR")
    ours, base, peaks = [], [], []
    for i in range(args.runs):
        # Alternate which side goes first, so a warm page cache favours neither.
        order = [("hfwizard", True), ("documented", False)] if i % 2 == 0 else [("documented", False),
                                                                               ("hfwizard", True)]
        for _, is_ours in order:
            if is_ours:
                seconds, peak = run_hfwizard(args.charts, args.ready_delay)
                ours.append(seconds)
                peaks.append(peak)
            else:
                base.append(run_documented(args.charts, args.ready_delay))
        print(f"run {i + 1}: hfwizard {ours[-1]:.1f} s (peak {peaks[-1] / 2**20:.0f} MiB), "
              f"documented {base[-1]:.1f} s", flush=True)
    o, b = statistics.median(ours), statistics.median(base)
    print(f"median: hfwizard {o:.1f} s, documented procedure {b:.1f} s, ratio {o / b:.2f} (target <= 0.25); "
          f"peak memory of hfwizard's process tree {max(peaks) / 2**20:.0f} MiB (target <= 600 MiB)")


if __name__ == "__main__":
    main()
