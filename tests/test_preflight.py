"""The preflight runner (concurrency, timeouts, crashes, skips, sandbox) and `hfwizard preflight` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.errors import BadInput
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished
from hfwizard.preflight import PreflightSettings, plan_preflight, run_checks, run_preflight
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import parse_profile
from tests.standins import GOOD_SK, Tls, make_tls, publishable_key, serving

ROOT = Path(__file__).resolve().parents[1]


def _sleeper(cid: str, seconds: float, status: Status = Status.PASS, timeout: float = 5.0) -> Check:
    async def run() -> CheckResult:
        await asyncio.sleep(seconds)
        return result(cid, cid, status, f"slept {seconds}")
    return Check(cid, cid, run, timeout)


async def _collect(stream: Any) -> list[Event]:
    return [e async for e in stream]


async def test_checks_run_concurrently_and_stream_in_finishing_order() -> None:
    checks = [_sleeper("a/slow", 0.4), _sleeper("b/fast", 0.05), _sleeper("c/mid", 0.2, Status.WARN)]
    started = time.monotonic()
    events = await _collect(run_checks(checks))
    took = time.monotonic() - started
    assert took < 0.6  # one by one would be 0.65 s
    assert [type(e) for e in events[:3]] == [CheckStarted] * 3
    finished = [e.result.id for e in events if isinstance(e, CheckFinished)]
    assert finished == ["b/fast", "c/mid", "a/slow"]
    last = events[-1]
    assert isinstance(last, PreflightFinished) and (last.passed, last.warned, last.failed) == (2, 1, 0)


async def test_a_hung_check_fails_with_its_timeout() -> None:
    events = await _collect(run_checks([_sleeper("x/hung", 30, timeout=0.2), _sleeper("y/ok", 0.01)]))
    got = {e.result.id: e.result for e in events if isinstance(e, CheckFinished)}
    assert got["x/hung"].status is Status.FAIL and got["x/hung"].finding == "no answer within 0.2 s"
    assert got["y/ok"].status is Status.PASS


async def test_a_raising_check_is_a_finding_not_a_crash() -> None:
    async def boom() -> CheckResult:
        raise RuntimeError("password=Canary-in-exception")

    events = await _collect(run_checks([Check("z/boom", "Boom", boom)]))
    r = next(e.result for e in events if isinstance(e, CheckFinished))
    assert r.status is Status.FAIL and "RuntimeError" in r.finding
    assert "Canary" not in repr(r) and "Traceback" not in repr(r)


async def test_closing_the_stream_cancels_running_checks() -> None:
    cancelled = asyncio.Event()

    async def forever() -> CheckResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError

    stream = run_checks([Check("w/forever", "Forever", forever, 60)])
    first = await anext(stream)
    assert isinstance(first, CheckStarted)
    await asyncio.sleep(0.05)  # let the check get going
    await stream.aclose()
    assert cancelled.is_set()


def _profile(text: str) -> Any:
    return parse_profile(text).profile


SANDBOX = """apiVersion: hfwizard/v1
kind: InstallProfile
target: {cloud: sandbox}
clerk: {publishableKey: pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA}
"""


def test_sandbox_skips_data_services_and_never_passes_them() -> None:
    plan = plan_preflight(_profile(SANDBOX))
    for prefix in ("postgres/", "redis/", "blob/", "cloud/", "outbound/"):
        ids = [i for i in plan.ids if i.startswith(prefix)]
        assert ids and all(plan.skipped[i] == "sandbox: rehearsal, not checked" for i in ids)
    assert plan.skipped["clerk/api"] == "sandbox: rehearsal, not checked"
    assert "kubernetes/nodes" not in plan.skipped and "clerk/keys" not in plan.skipped


def test_skip_lists_from_profile_and_command_line() -> None:
    profile = _profile(SANDBOX.replace("target:", "preflight: {skip: [helm/engine]}\ntarget:"))
    plan = plan_preflight(profile, PreflightSettings(skip=("kubernetes",)))
    assert plan.skipped["helm/engine"] == "skipped by preflight.skip in the profile"
    assert all(plan.skipped[i] == "skipped by --skip-check" for i in plan.ids if i.startswith("kubernetes/"))
    with pytest.raises(BadInput, match="'kubernets/api' names no check"):
        plan_preflight(profile, PreflightSettings(skip=("kubernets/api",)))


def test_per_check_timeouts() -> None:
    plan = plan_preflight(_profile(SANDBOX), PreflightSettings(timeout=3, timeouts={"helm/engine": 42}))
    by_id = {c.id: c for c in plan.checks}
    assert by_id["helm/engine"].timeout_s == 42 and by_id["kubernetes/api"].timeout_s == 3


async def test_unresolvable_secrets_become_findings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HFW_MISSING_PG", raising=False)
    monkeypatch.delenv("HFW_MISSING_SK", raising=False)
    text = f"""apiVersion: hfwizard/v1
kind: InstallProfile
target: {{cloud: existing, kubeconfig: {tmp_path / "none"}}}
postgres: {{host: 127.0.0.1, port: 9, password: "env:HFW_MISSING_PG"}}
clerk: {{publishableKey: pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA, secretKey: "env:HFW_MISSING_SK"}}
"""
    settings = PreflightSettings(timeout=2, skip=("kubernetes", "helm", "redis", "outbound", "blob", "cloud"))
    events = await _collect(run_preflight(_profile(text), settings))
    got = {e.result.id: e.result for e in events if isinstance(e, CheckFinished)}
    assert got["postgres/auth"].status is Status.FAIL and "HFW_MISSING_PG" in got["postgres/auth"].finding
    assert got["postgres/version"].status is Status.SKIPPED
    assert got["postgres/reachable"].status is Status.FAIL  # port 9 is closed: it still ran
    assert got["clerk/keys"].status is Status.FAIL and "HFW_MISSING_SK" in got["clerk/keys"].finding
    assert got["clerk/api"].status is Status.FAIL and "HFW_MISSING_SK" in got["clerk/api"].finding


# ---- the whole command, as a subprocess, against loopback stand-ins --------------------------------

AWS_KEY_ID = "AKIAE2ECANARY0000001"
AWS_SECRET = "Canary-E2E-aws-3b9d1f0a-do-not-leak"


def _write_profile(path: Path, *, kubeconfig: Path, pg: Any, redis: Any, clerk: Any, moto_url: str,
                   bucket: str) -> None:
    path.write_text(f"""apiVersion: hfwizard/v1
kind: InstallProfile
target:
  cloud: existing
  kubeconfig: {kubeconfig}
  namespace: highflame
credentials:
  aws:
    accessKeyId: env:HF_AWS_KEY_ID
    secretAccessKey: env:HF_AWS_SECRET
    endpointUrl: {moto_url}
postgres:
  host: 127.0.0.1
  port: {pg.port}
  password: env:HF_PG_PASSWORD
  sslmode: verify-full
  caCert: {pg.ca_file}
redis:
  endpoints: [{", ".join(redis.endpoints)}]
  tls: false
  password: env:HF_REDIS_PASSWORD
clickhouse:
  backup: {{provider: s3, bucket: {bucket}, region: us-east-1}}
clerk:
  publishableKey: {publishable_key(clerk.host)}
  secretKey: env:HF_CLERK_SK
  apiUrl: {clerk.url}
preflight:
  timeoutSeconds: 10
  registryUrl: {clerk.url}
platform:
  license: {{jwt: "file:{path.parent / 'license.jwt'}", publicKey: "file:{path.parent / 'public.pem'}"}}
images: {{pullSecret: "env:HF_PULL_TOKEN"}}
ingress: {{domain: highflame.example.test}}
modules: {{guardrails: {{enabled: false}}}}  # the emulated cluster has no GPU node group
""")
    (path.parent / "license.jwt").write_text("eyJ.license.jwt")
    (path.parent / "public.pem").write_text("-----BEGIN PUBLIC KEY-----")


def _hfwizard(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hfwizard", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


@pytest.fixture
def e2e(tmp_path: Path, kubeconfig: Path, pg17_tls: Any, redis_cluster: Any, moto_url: str,
        cloud_env: Path) -> Any:
    import boto3

    tls: Tls = make_tls(tmp_path, "127.0.0.1")
    bucket = f"hf-e2e-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y").create_bucket(Bucket=bucket)
    with serving(tls) as clerk:
        profile = tmp_path / "profile.yaml"
        _write_profile(profile, kubeconfig=kubeconfig, pg=pg17_tls, redis=redis_cluster, clerk=clerk,
                       moto_url=moto_url, bucket=bucket)
        env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
        env.update({"SSL_CERT_FILE": tls.ca_file, "HF_PG_PASSWORD": pg17_tls.password,
                    "HF_REDIS_PASSWORD": redis_cluster.password, "HF_CLERK_SK": GOOD_SK, "HF_PULL_TOKEN": "ghp_pull",
                    "HF_AWS_KEY_ID": AWS_KEY_ID, "HF_AWS_SECRET": AWS_SECRET, "NO_PROXY": "*"})
        canaries = [pg17_tls.password, redis_cluster.password, GOOD_SK, AWS_SECRET]
        yield profile, env, canaries


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_cli_json_all_pass_exits_0(e2e: Any, pg17_tls: Any) -> None:
    profile, env, canaries = e2e
    # The database administrator made the services' databases for the install's user beforehand.
    with _service_databases(pg17_tls):
        _all_pass(profile, env, canaries)


@contextlib.contextmanager
def _service_databases(pg: Any) -> Iterator[list[str]]:
    import psycopg
    from psycopg import sql

    from hfwizard.platform.values import databases

    names = databases(InstallProfile())
    with psycopg.connect(**pg.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(pg.user)))
    try:
        yield names
    finally:
        with psycopg.connect(**pg.conninfo(), autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _all_pass(profile: Path, env: dict[str, str], canaries: list[str]) -> None:
    # Debian's Redis is 7.0.15, below the 7.1 the platform needs: with it, this run could not pass.
    done = _hfwizard(["preflight", "--profile", str(profile), "--json", "--skip-check", "redis"], env)
    events = _lines(done.stdout)
    checks = [e for e in events if e["event"] == "check"]
    ids = [e["check_id"] for e in checks]
    assert len(ids) == len(set(ids)), "one line per check"
    bad = {e["check_id"]: e["finding"] for e in checks if e["status"] not in ("pass", "skipped")}
    # The loopback PostgreSQL is no RDS instance: its size cannot come from the cloud, and a warning says so.
    size = bad.pop("postgres/size", "")
    assert size.startswith("no RDS instance in us-east-1 has the endpoint 127.0.0.1"), size
    assert bad == {}, (bad, done.stderr)
    assert done.returncode == 0, done.stderr
    # Outbound from inside the cluster starts a pod: off unless the operator allows it.
    assert {e["check_id"] for e in checks if e["status"] == "skipped"} == {
        i for i in ids if i.startswith(("redis/", "outbound/cluster-"))}
    assert {"kubernetes/nodes", "kubernetes/node-groups", "platform/inputs", "helm/engine", "postgres/version",
            "postgres/create-database", "clerk/api", "blob/backup-bucket", "cloud/identity", "outbound/registry",
            "outbound/clerk-frontend"} <= set(ids)
    assert events[-1]["event"] == "preflight_finished" and events[-1]["failed"] == 0
    for canary in canaries:
        assert canary not in done.stdout and canary not in done.stderr


def test_cli_json_failure_exits_1_and_live_view(e2e: Any) -> None:
    profile, env, canaries = e2e
    env = {**env, "HF_CLERK_SK": "sk_test_RevokedCanaryKey00000000"}
    canaries = [*canaries, env["HF_CLERK_SK"]]
    done = _hfwizard(["preflight", "--profile", str(profile), "--json"], env)
    assert done.returncode == 1, done.stderr
    checks = {e["check_id"]: e for e in _lines(done.stdout) if e["event"] == "check"}
    assert checks["clerk/api"]["status"] == "fail"
    assert checks["clerk/api"]["finding"].startswith("Clerk rejected the secret key (env:HF_CLERK_SK)")
    assert checks["redis/version"]["status"] == "fail"  # the real 7.0.15 cluster, wired in
    assert checks["redis/cluster-state"]["status"] == "pass"
    # The readable view: a line per check, the remedy under failures, same exit code.
    view = _hfwizard(["preflight", "--profile", str(profile)], env)
    assert view.returncode == 1
    assert "✗ Clerk accepts the secret key" in view.stdout and "→ " in view.stdout
    assert "✓ Kubernetes 1.32 or newer" in view.stdout
    for out in (done.stdout, done.stderr, view.stdout, view.stderr):
        for canary in canaries:
            assert canary not in out


def test_cli_bad_skip_exits_2(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(SANDBOX)
    done = _hfwizard(["preflight", "--profile", str(profile), "--skip-check", "nope"], dict(os.environ))
    assert done.returncode == 2 and "'nope' names no check" in done.stderr
    done = _hfwizard(["preflight", "--profile", str(profile), "--timeout", "0"], dict(os.environ))
    assert done.returncode == 2


def test_quick_exit_runs_atexit_and_does_not_wait_for_stuck_threads(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    code = ("import atexit, pathlib, sys, threading, time\n"
            "from hfwizard import quick_exit\n"
            f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
            # An SDK call that outlived its check's timeout: a normal exit would wait 60 s for it.
            "threading.Thread(target=time.sleep, args=(60,)).start()\n"
            "quick_exit.arm()\n"
            "print('report', flush=False)\n"
            "quick_exit.leave(3)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert time.monotonic() - started < 10
    assert done.returncode == 3 and done.stdout == "report\n"  # output flushed on the way out
    assert marker.read_text() == "yes"


async def test_a_check_waiting_for_its_secret_is_timed_from_its_own_start() -> None:
    from hfwizard.preflight import _with_secret, run_check

    async def slow_secret() -> str:
        await asyncio.sleep(0.3)  # a keyring over D-Bus, a k8s: Secret read from a slow API server
        return "pw"

    def build(password: str) -> list[Check]:
        async def run() -> CheckResult:
            started = time.monotonic()  # the built check's own timer starts after the wait
            await asyncio.sleep(0.05)
            return result("db/auth", "auth", Status.PASS if password == "pw" else Status.FAIL, "ok",
                          started=started)
        return [Check("db/auth", "auth", run, 5)]

    (check,) = _with_secret(build(""), slow_secret, "db.password", build, owner="db/auth")
    got = await run_check(check)
    assert got.status is Status.PASS and got.duration_s >= 0.3, got
