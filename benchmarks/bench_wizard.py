"""Benchmark the Textual wizard: first screen, key latency under a log flood, peak memory of a sandbox install.

Each figure is set against a baseline measured in the same run:

    startup  process start to the Welcome screen mounted and painted (`hfwizard` in a pseudo-terminal,
             the app writes CLOCK_MONOTONIC to a marker file once the screen is up, then exits),
             against the whole of `python -c "import textual.app"`;
    latency  key press to the next frame holding its effect, on the Install screen while its log pane
             gets 10,000 lines a second (Pilot, headless: the frame is computed, not written to a
             terminal), against the same keys with no flood;
    memory   peak resident memory of the whole process tree (wizard, Helm child, emulator child) of a
             sandbox install driven through the wizard by keys, against `hfwizard sandbox` (the same
             install from the CLI).

    .venv/bin/python benchmarks/bench_wizard.py startup [--runs 7]
    .venv/bin/python benchmarks/bench_wizard.py latency [--seconds 8] [--rate 10000]
    .venv/bin/python benchmarks/bench_wizard.py memory [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


# ---- startup ---------------------------------------------------------------------------------------


def first_screen(tmp: Path) -> float:
    """Seconds from spawning `hfwizard` in a 80×24 pseudo-terminal to its Welcome screen being up."""
    import pexpect
    from hfwizard.screens.app import READY_MARKER_ENV

    marker = tmp / "ready"
    marker.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({READY_MARKER_ENV: str(marker), "HFWIZARD_STATE_DIR": str(tmp / "state"),
                "TERM": env.get("TERM", "xterm-256color")})
    started = time.monotonic()
    child = pexpect.spawn(sys.executable, ["-m", "hfwizard"], env=env, dimensions=(24, 80), cwd=str(tmp))
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    return float(marker.read_text()) - started


def import_textual() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True)
    return time.monotonic() - started


def bench_startup(runs: int) -> None:
    wizard: list[float] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        first_screen(Path(d))  # warm the file cache and bytecode once; not counted
        for _ in range(runs):  # interleaved, so both see the same machine
            baseline.append(import_textual())
            wizard.append(first_screen(Path(d)))
    w, b = median(wizard), median(baseline)
    print(f"python -c 'import textual.app' (whole process): median {b:.3f} s  {[round(x, 3) for x in baseline]}")
    print(f"hfwizard to Welcome screen ready:              median {w:.3f} s  {[round(x, 3) for x in wizard]}")
    print(f"ratio {w / b:.2f}; target: first screen within 1.0 s -> {'met' if w <= 1.0 else 'MISSED'}")


# ---- latency ---------------------------------------------------------------------------------------


class FloodRun:
    """Stands in for operations.InstallRun: the plan's steps start, then the platform's release logs
    `rate` lines a second (in 5 ms slices, on schedule) with a progress event per slice."""

    rate = 0
    seconds = 0.0
    delivered = 0

    def __init__(self, profile: Any, state_dir: Path) -> None:
        from hfwizard import operations

        self.steps = operations.install_steps(profile)
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    async def events(self) -> AsyncIterator[Any]:
        from hfwizard.events import InstallFinished, LogLine, StepFinished, StepProgress, StepStarted

        ids = [sid for sid, _ in self.steps]
        for sid, title in self.steps[:-1]:
            yield StepStarted(sid, title)
        for sid in ids[:-2]:
            for i in range(3000):  # a full ring for the steps the keys move onto
                yield LogLine(sid, f"{sid}: earlier line {i}")
            yield StepFinished(sid, "ok", "done")
        flooded = ids[-2]
        start = time.monotonic()
        slice_s, n = 0.005, 0
        while not self.cancelled and time.monotonic() - start < FloodRun.seconds:
            due = int((time.monotonic() - start) * FloodRun.rate)
            while n < due:
                yield LogLine(flooded, f"helm DEBUG line {n}: waiting for Deployment highflame-guardrails "
                                       f"to become ready ({n % 7}/7)", source="helm")
                n += 1
            yield StepProgress(flooded, n % 7, 7)
            await asyncio.sleep(slice_s)
        FloodRun.delivered = n
        yield InstallFinished("interrupted", 3, "benchmark over")


async def key_latencies(rate: int, seconds: float, presses: int) -> tuple[list[float], float]:
    from hfwizard.screens.app import WizardApp
    from textual import events
    from textual.widgets import ListView

    from hfwizard import operations
    from tests.screens_helpers import SANDBOX_ANSWERS

    FloodRun.rate, FloodRun.seconds = rate, seconds
    real = operations.InstallRun
    operations.InstallRun = FloodRun  # type: ignore[misc, assignment]
    try:
        with tempfile.TemporaryDirectory() as d:
            app = WizardApp(Path(d) / "state")
            async with app.run_test(size=(120, 40)) as pilot:
                draft = app.open_draft("highflame")
                for path, value in SANDBOX_ANSWERS.items():
                    draft.set(path, value)
                app.show("install")
                await pilot.pause(0.5)  # the earlier steps' lines are in
                steps = app.screen.query_one("#steps", ListView)
                steps.index = 3  # the flooded step
                await pilot.pause(0.2)
                waiting: dict[str, Any] = {}
                out: list[float] = []
                real_display = app._display

                def display(screen: Any, renderable: Any) -> None:
                    real_display(screen, renderable)
                    if renderable is not None and waiting and steps.index == waiting["index"]:
                        out.append(time.perf_counter() - waiting.pop("at"))
                        waiting.pop("index")
                        waiting.pop("done").set()

                app._display = display
                started = time.monotonic()
                for i in range(presses):
                    if time.monotonic() - started > seconds - 0.5:
                        break
                    # Between the flooded step and the one before it: each move redraws a full ring.
                    key, index = ("up", 2) if i % 2 == 0 else ("down", 3)
                    done = asyncio.Event()
                    waiting.update(index=index, done=done, at=time.perf_counter())
                    # As the terminal driver delivers a key (Pilot.press would also wait for idle).
                    event = events.Key(key, None)
                    event.set_sender(app)
                    app._driver.send_message(event)
                    await asyncio.wait_for(done.wait(), 5)
                    await asyncio.sleep(random.uniform(0.03, 0.09))
                flood_s = time.monotonic() - started
                app.exit()
            return out, FloodRun.delivered / max(flood_s, 1e-9) if rate else 0.0
    finally:
        operations.InstallRun = real  # type: ignore[misc]


def bench_latency(seconds: float, rate: int, presses: int) -> None:
    idle, _ = asyncio.run(key_latencies(0, seconds, presses))
    flood, achieved = asyncio.run(key_latencies(rate, seconds, presses))
    ms = 1000.0
    print(f"no flood:           n={len(idle)} p50 {median(idle) * ms:.1f} ms  p95 {pct(idle, 0.95) * ms:.1f} ms  "
          f"max {max(idle) * ms:.1f} ms")
    print(f"{rate} lines/s flood: n={len(flood)} p50 {median(flood) * ms:.1f} ms  "
          f"p95 {pct(flood, 0.95) * ms:.1f} ms  max {max(flood) * ms:.1f} ms  (lines taken in: {achieved:.0f}/s)")
    p95 = pct(flood, 0.95)
    print(f"p95 ratio flood/idle {p95 / pct(idle, 0.95):.2f}; target p95 <= 100 ms -> "
          f"{'met' if p95 <= 0.1 else 'MISSED'}")


# ---- memory ----------------------------------------------------------------------------------------


def _tree_rss(root_pid: int) -> tuple[int, dict[str, int]]:
    """(sum of VmRSS in bytes over `root_pid` and every descendant, MiB per process at that moment)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    each: dict[str, int] = {}
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
                        total += rss
                        with open(f"/proc/{pid}/cmdline", "rb") as cl:
                            args = cl.read().split(b"\0")
                        what = next((a.decode() for a in args[1:4] if a.startswith(b"hfwizard.") or
                                     a.endswith(b".py")), args[0].decode()).rsplit("/", 1)[-1]
                        each[f"{pid}:{what}"] = rss // 2**20
        except OSError:
            continue
    return total, each


def peak_tree_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, int], float]:
    """Run `cmd`, sampling its process tree every 20 ms: (peak MiB, MiB per process at the peak, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, at_peak = 0, {}
    while proc.poll() is None:
        rss, each = _tree_rss(proc.pid)
        if rss > peak:
            peak, at_peak = rss, each
        time.sleep(0.02)
    if proc.returncode != 0:
        err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"{cmd} exited {proc.returncode}: {err}")
    return peak / 2**20, at_peak, time.monotonic() - started


def walk_child(root: str) -> None:
    """The memory run's child: the wizard driven by keys from Welcome to Done into the sandbox."""
    from tests.test_screens_e2e import walk

    seen = asyncio.run(walk(Path(root)))
    assert seen["exit"] == 0 and "installed in the sandbox" in seen["done"], seen


def bench_memory(runs: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(HFWIZARD_SANDBOX_READY_DELAY="0.5", HFWIZARD_SANDBOX_STEP_DELAY="0.1")
    wizard: list[tuple[float, dict[str, int], float]] = []
    cli: list[tuple[float, dict[str, int], float]] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            cli.append(peak_tree_rss([sys.executable, "-m", "hfwizard", "sandbox", "--json",
                                      "--state-dir", f"{d}/cli"], env))
            wizard.append(peak_tree_rss([sys.executable, __file__, "_walk", f"{d}/wizard"], env))
    for label, got in (("hfwizard sandbox (CLI)", cli), ("wizard, Welcome to Done", wizard)):
        print(f"{label:<24} peak tree RSS median {median([g[0] for g in got]):.0f} MiB "
              f"{[round(g[0]) for g in got]}, {median([g[2] for g in got]):.1f} s; at the peak (MiB): "
              f"{', '.join(f'{k.split(':', 1)[1]} {v}' for k, v in got[-1][1].items())}")
    w, c = median([g[0] for g in wizard]), median([g[0] for g in cli])
    print(f"ratio wizard/CLI {w / c:.2f}; target <= 400 MB -> {'met' if w * 2**20 <= 400e6 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("startup")
    p.add_argument("--runs", type=int, default=7)
    p = sub.add_parser("latency")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--presses", type=int, default=80)
    p = sub.add_parser("memory")
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("_walk")  # internal: the memory run's child
    p.add_argument("root")
    args = parser.parse_args()
    if args.what == "startup":
        bench_startup(args.runs)
    elif args.what == "latency":
        bench_latency(args.seconds, args.rate, args.presses)
    elif args.what == "memory":
        bench_memory(args.runs)
    else:
        walk_child(args.root)


if __name__ == "__main__":
    main()
