"""Benchmark: `hfwizard preflight` as a whole process against its own slowest check.

Every check of an `existing`-cluster profile runs for real against loopback stand-ins: the emulated
cluster (6 Ready workers), moto (STS, S3), an HTTPS stand-in answering as the registry and as Clerk
whose answers are held back by T seconds (so the slowest check takes T plus a handshake), and
PostgreSQL / Redis endpoints on closed ports (refused at once, after their libraries were imported and
their env: passwords resolved). The process's wall time, from spawn to exit, is compared with the
slowest check's own reported duration; also shown: spawn to the first event, the last event to exit,
and the CPU time of the process (user + system, which the machine's load does not change).

    .venv/bin/python benchmarks/bench_preflight_process.py [--slowest 2.0] [--repeat 5] [--baseline-src DIR]
        [--instructions CHECK]

--baseline-src runs a second source tree (say `git archive` of an older commit) through the same
measurement, alternating with this one run by run, so both see the same machine load. --instructions
counts, with valgrind, what the command executes before CHECK starts: a figure no load changes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.standins import GOOD_SK, make_tls, publishable_key, serving


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket goes: connections are refused


def write_profile(path: Path, *, kubeconfig: Path, moto_url: str, clerk_url: str, clerk_host: str,
                  bucket: str) -> None:
    path.write_text(f"""apiVersion: hfwizard/v1
kind: InstallProfile
metadata: {{name: bench}}
target: {{cloud: existing, kubeconfig: {kubeconfig}, namespace: highflame}}
credentials:
  aws: {{accessKeyId: 'env:BENCH_AWS_ID', secretAccessKey: 'env:BENCH_AWS_SECRET', endpointUrl: '{moto_url}'}}
postgres: {{host: 127.0.0.1, port: {closed_port()}, password: 'env:BENCH_PG', sslmode: disable}}
redis: {{endpoints: ['127.0.0.1:{closed_port()}'], tls: false, password: 'env:BENCH_REDIS'}}
clickhouse: {{backup: {{provider: s3, bucket: {bucket}, region: us-east-1}}}}
clerk: {{publishableKey: '{publishable_key(clerk_host)}', secretKey: 'env:BENCH_CLERK', apiUrl: '{clerk_url}'}}
preflight: {{timeoutSeconds: 10, registryUrl: '{clerk_url}'}}
""")


def env_for(home: Path, ca_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if "PROXY" not in k.upper() and not k.startswith(("AWS_", "AZURE_", "GOOGLE_", "KUBECONFIG"))}
    env.update({"HOME": str(home), "SSL_CERT_FILE": ca_file, "NO_PROXY": "*", "AWS_EC2_METADATA_DISABLED": "true",
                "BENCH_AWS_ID": "AKIDBENCH", "BENCH_AWS_SECRET": "bench-secret", "BENCH_PG": "pg-pw",
                "BENCH_REDIS": "redis-pw", "BENCH_CLERK": GOOD_SK})
    if os.environ.get("BENCH_NO_BYTECODE") != "1":
        # As installed from a wheel: hfwizard's modules from bytecode, not compiled at every start (this
        # machine sets PYTHONDONTWRITEBYTECODE, which costs each process 0.1 s). The cache goes to a
        # temporary folder (filled by the warm-up run), never into the checkout.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(home.parent / "pycache")
    return env


def one_run(profile: Path, env: dict[str, str]) -> dict[str, float]:
    """Spawn to exit; the slowest check's duration; spawn to first event; last event to exit."""
    argv = [str(Path(sys.executable).with_name("hfwizard")), "preflight", "--profile", str(profile), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    first = last = 0.0
    durations: dict[str, float] = {}
    for line in proc.stdout:
        now = time.monotonic() - started
        first = first or now
        last = now
        event = json.loads(line)
        if event.get("event") == "check" and event.get("status") != "skipped":
            durations[event["check_id"]] = float(event.get("duration_s") or 0.0)
    proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the process and its children, once reaped
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    slowest_id = max(durations, key=lambda k: durations[k])
    return {"wall": wall, "slowest": durations[slowest_id], "first": first, "exit": wall - last, "cpu": cpu,
            "checks": len(durations), "slowest_id": slowest_id, "rc": proc.returncode,
            "stderr": proc.stderr.read() if proc.stderr else ""}  # type: ignore[dict-item]


# The preflight command in-process up to the moment its first check starts, then out: the CPU time spent
# before any check could start (interpreter, imports, argument parsing, profile, plan), which the machine's
# load does not change the way it changes wall time.
# With a check id as first argument: up to the moment that check starts instead.
_FIRST_CHECK_CPU = """
import os, sys, time
import hfwizard.preflight as pf
until = sys.argv.pop(1) if sys.argv[1] != "preflight" else None
run = pf.run_check
async def run_check(check):
    if until is not None and check.id != until:
        return await run(check)
    sys.stderr.write(f"CPU {time.process_time():.4f}\\n")
    sys.stderr.flush()
    os._exit(0)
pf.run_check = run_check
from hfwizard.frontends.cli import main
sys.argv = ["hfwizard", *sys.argv[1:]]
main()
"""


def cpu_to_first_check(profile: Path, env: dict[str, str]) -> float:
    # -P: not the current folder first on sys.path, which would import this checkout's hfwizard for a
    # --baseline-src build too.
    done = subprocess.run([sys.executable, "-P", "-c", _FIRST_CHECK_CPU, "preflight", "--profile", str(profile),
                           "--json"], env=env, capture_output=True, text=True, timeout=60)
    return float(done.stderr.split("CPU ")[1].split()[0])


def instructions_to(check_id: str, profile: Path, env: dict[str, str]) -> int:
    """Instructions the command executes from exec to `check_id`'s start, counted by valgrind: the same on
    an idle machine and under any load (one run is enough; two runs differ by well under 1%)."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           "-P", "-c", _FIRST_CHECK_CPU, check_id, "preflight", "--profile", str(profile), "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    return int(done.stderr.split("I   refs:")[1].split()[0].replace(",", ""))


def baseline(env: dict[str, str]) -> float:
    """Spawn to exit of `hfwizard --version`: the interpreter and the CLI's own imports, nothing else."""
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).with_name("hfwizard")), "--version"], env=env, check=True,
                   capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slowest", type=float, default=2.0, help="T: the HTTPS stand-in's delay (s)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="also run hfwizard from this source tree (PYTHONPATH), interleaved run by run")
    parser.add_argument("--instructions", metavar="CHECK", default=None,
                        help="also count (valgrind) the instructions from exec to CHECK's start (outbound/registry)")
    args = parser.parse_args()
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    from hfwizard.sandbox.emulator import ClusterThread

    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    # A helm child a run started may still be writing bytecode when the folder goes: ignore that.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "home").mkdir()
        tls = make_tls(folder, "127.0.0.1")
        clerk = stack.enter_context(serving(tls, delay=args.slowest))
        cluster = ClusterThread(controllers=False).start()
        stack.callback(cluster.stop)
        cluster.call(lambda c: c.seed_default(workers=6, cpu="8", memory="32Gi"))
        kubeconfig = cluster.write_kubeconfig(folder / "kubeconfig")
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="y").create_bucket(Bucket="hf-bench")
        profile = folder / "profile.yaml"
        write_profile(profile, kubeconfig=kubeconfig, moto_url=moto_url, clerk_url=clerk.url,
                      clerk_host=clerk.host, bucket="hf-bench")
        env = env_for(folder / "home", tls.ca_file)
        builds = {"now": env}
        if args.baseline_src is not None:
            builds[f"before ({args.baseline_src})"] = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
        for build_env in builds.values():
            one_run(profile, build_env)  # warm-up: the page cache, bytecode, moto's first answers
        measured: dict[str, tuple[list[dict[str, float]], list[float], list[float]]] = {
            name: ([], [], []) for name in builds}
        for _ in range(args.repeat):  # interleaved, so every build sees the same machine load
            for name, build_env in builds.items():
                runs, bases, cpus = measured[name]
                runs.append(one_run(profile, build_env))
                bases.append(baseline(build_env))
                cpus.append(cpu_to_first_check(profile, build_env))
        counts = {name: instructions_to(args.instructions, profile, build_env)
                  for name, build_env in builds.items()} if args.instructions else {}
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for name, count in counts.items():
        print(f"{name}: {count / 1e6:,.0f} M instructions from exec to the start of {args.instructions}")
    for name, (runs, bases, cpus) in measured.items():
        report(name, runs, bases, cpus, slowest=args.slowest)


def report(name: str, runs: list[dict[str, float]], bases: list[float], cpus: list[float], *, slowest: float) -> None:
    med = {k: statistics.median(float(r[k]) for r in runs) for k in ("wall", "slowest", "first", "exit", "cpu")}
    base = statistics.median(bases)
    over = med["wall"] - med["slowest"]
    print(f"{name}: hfwizard preflight, whole process: {runs[0]['checks']} checks run, T={slowest:.2f} s, "
          f"exit code {runs[0]['rc']}, slowest {runs[0]['slowest_id']}; median of {len(runs)}")
    print(f"  wall {med['wall']:.3f} s  slowest check {med['slowest']:.3f} s  over {over:+.3f} s "
          f"({'ok' if over <= 0.3 else 'OVER'} against +0.3 s)  ratio {med['wall'] / med['slowest']:.3f}")
    print(f"  spawn to first event {med['first']:.3f} s   last event to exit {med['exit']:.3f} s   "
          f"CPU of the process {med['cpu']:.3f} s (user + system: what the load does not change)")
    print(f"  CPU time before the first check starts {statistics.median(cpus):.3f} s (in-process, load-independent)")
    print(f"  baseline `hfwizard --version` {base:.3f} s; first event / baseline {med['first'] / base:.2f}; "
          f"over slowest beyond the baseline {over - base:+.3f} s")
    print("  per run (wall - slowest = over): " + ", ".join(
        f"{float(r['wall']):.2f}-{float(r['slowest']):.2f}={float(r['wall']) - float(r['slowest']):+.2f}"
        for r in runs))


if __name__ == "__main__":
    main()
