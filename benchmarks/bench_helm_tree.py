"""Helm's share of a whole sandbox rehearsal: wall time, CPU by process kind, peak memory of the tree.

Runs `hfwizard sandbox --charts DIR --json` (a fresh state dir each time) and samples its process tree
from /proc every 20 ms: CPU of the Helm children (`hfwizard.engine.helm_child`), of the emulator and of
hfwizard itself (each process's last sampled utime+stime), the peak RSS of the whole tree and of the
Helm children together, how many Helm children ran and how many at once. With `--baseline DIR` (an
unpacked older checkout, e.g. `git archive <commit> | tar -x -C DIR`), the same command runs with that
code first on PYTHONPATH, alternating with this checkout's, so both see the same load.

    .venv/bin/python benchmarks/bench_helm_tree.py [--runs 2] [--baseline DIR] [--charts DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from proctree import processes, tree  # beside this script

_TICK = os.sysconf("SC_CLK_TCK")
_ROOT = Path(__file__).resolve().parent.parent


def _kind(cmd: str) -> str:
    return "helm" if "helm_child" in cmd else "emulator" if "sandbox.emulator" in cmd else "hfwizard"


def measure(charts: Path, pythonpath: str) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix="bench-helm-"))
    env = {**os.environ, "PYTHONPATH": pythonpath, "HFWIZARD_STATE_DIR": str(state)}
    start = time.monotonic()
    with open(state / "bench.err", "wb") as err:
        proc = subprocess.Popen([str(_ROOT / ".venv" / "bin" / "hfwizard"), "sandbox", "--charts", str(charts),
                                 "--json"], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                cwd=state)  # `python -m` puts the cwd first on sys.path: not a checkout
    cpu: dict[int, int] = {}
    kinds: dict[int, str] = {}
    peak = peak_helm = most_helm = 0
    while proc.poll() is None:
        procs = processes()
        rss = helm_rss = helm_now = 0
        for pid in tree(procs, proc.pid):
            _parent, ticks, resident, cmd, status = procs[pid]
            if status == "Z":
                continue
            if kinds.get(pid, "hfwizard") == "hfwizard":  # seen before its exec, a child reads as its parent
                kinds[pid] = _kind(cmd)
            cpu[pid] = max(cpu.get(pid, 0), ticks)
            rss += resident
            if kinds[pid] == "helm":
                helm_rss, helm_now = helm_rss + resident, helm_now + 1
        peak, peak_helm, most_helm = max(peak, rss), max(peak_helm, helm_rss), max(most_helm, helm_now)
        time.sleep(0.02)
    if proc.returncode != 0:
        tail = (state / "bench.err").read_text(errors="replace")[-2000:]
        raise SystemExit(f"the rehearsal failed (exit {proc.returncode}):\n{tail}")
    by_kind = {k: sum(cpu[p] for p in cpu if kinds[p] == k) / _TICK for k in ("helm", "emulator", "hfwizard")}
    return {"wall": time.monotonic() - start, **{f"cpu_{k}": v for k, v in by_kind.items()},
            "peak_tree_mib": peak / 2**20, "peak_helm_mib": peak_helm / 2**20,
            "helm_children": sum(1 for k in kinds.values() if k == "helm"), "helm_at_once": most_helm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="an unpacked older checkout to compare with")
    parser.add_argument("--charts", type=Path, default=_ROOT.parent.parent / "shared" / "highflame" / "charts")
    args = parser.parse_args()
    sides = {"this checkout": str(_ROOT)}
    if args.baseline is not None:
        sides = {"baseline": str(args.baseline.resolve()), **sides}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for run in range(args.runs):
        order = list(sides) if run % 2 == 0 else list(reversed(sides))
        for name in order:
            rows[name].append(measure(args.charts, sides[name]))
            print(f"run {run + 1} {name}: " + " ".join(f"{k}={v:.1f}" for k, v in rows[name][-1].items()), flush=True)
    print(f"load: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    for name, measured in rows.items():
        medians = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
        print(f"median {name}: " + " ".join(f"{k}={v:.1f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
