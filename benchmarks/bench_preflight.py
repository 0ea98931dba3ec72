"""Benchmark: twelve preflight checks run concurrently against one by one, in the same run.

Real checks against loopback stand-ins: HTTPS (TCP, TLS with a trustme CA, HTTP) to twelve local
servers whose answers are held back by set delays, the slowest by T. A second scenario runs twelve
blocking (thread-bound, like the cloud SDKs and the Kubernetes client) checks, to show why checks get
their own thread pool rather than asyncio.to_thread's default one.

    .venv/bin/python benchmarks/bench_preflight.py [--slowest 1.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.outbound import (
    check_destination,
    clerk_api_destination,
    clerk_frontend_destination,
    registry_destination,
)
from hfwizard.checks.threads import in_thread
from hfwizard.events import CheckFinished, PreflightFinished
from hfwizard.preflight import run_check, run_checks
from tests.standins import make_tls, serving

N = 12


async def concurrent(checks: list[Check]) -> tuple[float, int]:
    started = time.monotonic()
    passed = 0
    async for event in run_checks(checks):
        if isinstance(event, CheckFinished) and event.result.status is Status.PASS:
            passed += 1
        assert not isinstance(event, PreflightFinished) or event.failed == 0, event
    return time.monotonic() - started, passed


async def one_by_one(checks: list[Check]) -> tuple[float, int]:
    started = time.monotonic()
    passed = 0
    for c in checks:
        passed += (await run_check(c)).status is Status.PASS
    return time.monotonic() - started, passed


def http_checks(servers: list, ca_file: str) -> list[Check]:  # type: ignore[type-arg]
    makers = [lambda s: registry_destination(s.url), lambda s: clerk_frontend_destination(s.host),
              lambda s: clerk_api_destination(s.url)]
    checks = []
    for i, server in enumerate(servers):
        dest = makers[i % 3](server)

        def run(dest=dest) -> Awaitable[CheckResult]:  # type: ignore[no-untyped-def]
            return check_destination(dest, timeout=10, ca_file=ca_file, proxy=False)
        checks.append(Check(f"{dest.check_id}-{i}", dest.title, run, 15))
    return checks


def blocking_checks(delays: list[float], offload: Callable[..., Awaitable[None]]) -> list[Check]:
    checks = []
    for i, delay in enumerate(delays):
        async def run(delay: float = delay, i: int = i) -> CheckResult:
            await offload(time.sleep, delay)  # a synchronous SDK call that takes `delay`
            return result(f"sdk/{i}", "blocking call", Status.PASS, f"{delay:.2f} s")
        checks.append(Check(f"sdk/{i}", "blocking call", run, 15))
    return checks


def report(name: str, slowest: float, conc: list[float], seq: list[float]) -> None:
    c, s = statistics.median(conc), statistics.median(seq)
    verdict = "ok" if c <= slowest + 0.3 else "OVER"
    print(f"{name:<34} slowest T={slowest:.2f} s  concurrent {c:.3f} s (T+{c - slowest:.3f}, {verdict})  "
          f"one-by-one {s:.3f} s  ratio {c / s:.3f}  speed-up {s / c:.1f}x")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slowest", type=float, default=1.0, help="T: the slowest check's delay (s)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t = args.slowest
    delays = [round(t * (i + 1) / N, 3) for i in range(N)]  # T/12 ... T
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tls = make_tls(Path(tmp), "127.0.0.1")
        servers = [stack.enter_context(serving(tls, delay=d)) for d in delays]
        http = http_checks(servers, tls.ca_file)
        await concurrent(http)  # warm-up: imports, TLS context
        # The handshake and request add a few ms on top of each delay: the slowest check takes T + that.
        slowest_real = max([(await run_check(c)).duration_s for c in http[-1:]])
        conc, seq = [], []
        for _ in range(args.repeat):
            took, ok = await concurrent(http)
            assert ok == N, f"only {ok} of {N} checks passed"
            conc.append(took)
            took, ok = await one_by_one(http)
            assert ok == N
            seq.append(took)
        print(f"{N} HTTPS checks (DNS, TCP, TLS, HTTP) to loopback stand-ins, delays {delays[0]}..{t} s; "
              f"slowest alone {slowest_real:.3f} s; median of {args.repeat}")
        report("HTTPS checks", t, conc, seq)

    for label, offload in (("blocking SDK calls, own pool", in_thread),
                           ("blocking SDK calls, to_thread", asyncio.to_thread)):
        checks = blocking_checks(delays, offload)
        conc, seq = [], []
        for _ in range(args.repeat):
            conc.append((await concurrent(checks))[0])
            seq.append((await one_by_one(checks))[0])
        report(label, t, conc, seq)
    import os

    print(f"(this machine: {os.cpu_count()} CPUs; asyncio's default pool has min(32, CPUs + 4) threads)")


if __name__ == "__main__":
    asyncio.run(main())
