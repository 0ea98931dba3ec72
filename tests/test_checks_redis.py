"""Redis checks against real Redis 7.0.15 clusters started by the fixtures."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

import pytest
import trustme

from hfwizard.checks.base import CheckResult, Status
from hfwizard.checks.redis import (
    GIB,
    RedisSpec,
    parse_cluster_nodes,
    parse_endpoint,
    redis_checks,
    server_identity,
    version_ok,
)
from tests.fixtures.servers import REDIS_PASSWORD, RedisServers, SilentListener

CANARY = "Canary-WRONG-redis-0d5e2a9b"


def spec_for(servers: RedisServers, **over: object) -> RedisSpec:
    base = RedisSpec(endpoints=servers.endpoints[:1], tls=servers.tls, ca_file=servers.ca_file,
                     password=servers.password, timeout_s=5.0)
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


async def run(spec: RedisSpec) -> dict[str, CheckResult]:
    checks = redis_checks(spec)
    results = await asyncio.gather(*(asyncio.wait_for(c.run(), c.timeout_s) for c in checks))
    return {r.id.split("/", 1)[1]: r for r in results}


def assert_no_secret(results: dict[str, CheckResult], *secrets: str) -> None:
    for r in results.values():
        for secret in secrets:
            assert secret not in repr(r), f"{r.id} leaks a secret"


async def test_healthy_cluster(redis_cluster: RedisServers) -> None:
    redis_cluster.set_maxmemory("4gb")
    r = await run(spec_for(redis_cluster))
    for name in ("reachable", "auth", "cluster-mode", "cluster-state", "memory"):
        assert r[name].status is Status.PASS, r[name]
    assert "all 3 primaries" in r["cluster-state"].finding
    # Only one seed was given: the memory check still asked every primary the cluster reports.
    assert r["memory"].details["primaries_checked"] == 3
    for endpoint in redis_cluster.endpoints:
        assert endpoint in r["memory"].finding
    assert r["tls"].status is Status.WARN
    assert_no_secret(r, REDIS_PASSWORD)


async def test_version_7_0_fails_naming_it(redis_cluster: RedisServers) -> None:
    r = await run(spec_for(redis_cluster))
    assert r["version"].status is Status.FAIL
    assert r["version"].finding.startswith("Redis 7.0.15 found, 7.1 or newer required")
    assert r["version"].remedy


async def test_cluster_state_fail_with_uncovered_slots(redis_cluster_uncovered: RedisServers) -> None:
    r = await run(spec_for(redis_cluster_uncovered))
    assert r["cluster-mode"].status is Status.PASS
    state = r["cluster-state"]
    assert state.status is Status.FAIL
    assert "cluster_state:fail on all 3 primaries (slots assigned 10923/16384" in state.finding
    assert state.remedy and "slots" in state.remedy


async def test_memory_below_minimum_fails_on_the_node(redis_cluster: RedisServers) -> None:
    redis_cluster.set_maxmemory("4gb")
    small = redis_cluster.nodes[2]
    with redis_cluster.client(small) as c:
        c.config_set("maxmemory", "1gb")
    r = await run(spec_for(redis_cluster))  # seeded by node 0: node 2 is found through CLUSTER NODES
    mem = r["memory"]
    assert mem.status is Status.FAIL
    assert f"{small.endpoint} maxmemory 1.0 GiB" in mem.finding
    assert mem.remedy and "maxmemory to at least 4gb" in mem.remedy


async def test_memory_unlimited_is_a_warning(redis_cluster: RedisServers) -> None:
    redis_cluster.set_maxmemory(0)
    r = await run(spec_for(redis_cluster))
    system = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    if system >= 4 * GIB:
        assert r["memory"].status is Status.WARN and "no maxmemory set" in r["memory"].finding
    else:
        assert r["memory"].status is Status.FAIL


async def test_wrong_password(redis_cluster: RedisServers, caplog: pytest.LogCaptureFixture,
                              capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    r = await run(spec_for(redis_cluster, password=CANARY))
    assert r["reachable"].status is Status.PASS
    assert r["auth"].status is Status.FAIL and r["auth"].finding == "authentication failed for user default"
    for name in ("version", "cluster-mode", "cluster-state", "memory"):
        assert r[name].status is Status.SKIPPED, r[name]
    assert_no_secret(r, CANARY, REDIS_PASSWORD)
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert CANARY not in text and REDIS_PASSWORD not in text


async def test_no_password_given(redis_cluster: RedisServers) -> None:
    r = await run(spec_for(redis_cluster, password=""))
    assert r["auth"].status is Status.FAIL and "requires a password" in r["auth"].finding


async def test_standalone_is_not_a_cluster(redis_standalone: RedisServers) -> None:
    r = await run(spec_for(redis_standalone))
    assert r["cluster-mode"].status is Status.FAIL and "cluster mode is disabled" in r["cluster-mode"].finding
    assert r["cluster-state"].status is Status.SKIPPED


async def test_closed_port_and_silent_listener(closed_port: int, silent_listener: SilentListener) -> None:
    spec = RedisSpec(endpoints=[f"127.0.0.1:{closed_port}"], tls=False, password=CANARY, timeout_s=1.0)
    r = await run(spec)
    assert r["reachable"].status is Status.FAIL and "refused" in r["reachable"].finding
    assert r["auth"].status is Status.SKIPPED and "not reached" in r["auth"].finding
    spec = RedisSpec(endpoints=[f"127.0.0.1:{silent_listener.port}"], tls=False, password=CANARY,
                     timeout_s=1.0)
    started = time.monotonic()
    r = await run(spec)
    assert r["auth"].status is Status.FAIL and "no answer within 1 s" in r["auth"].finding
    assert time.monotonic() - started < 1.0 + 0.5
    assert_no_secret(r, CANARY)


async def test_tls_cluster(redis_cluster_tls: RedisServers, tmp_path: Path) -> None:
    redis_cluster_tls.set_maxmemory("4gb")
    r = await run(spec_for(redis_cluster_tls))
    for name in ("reachable", "tls", "auth", "cluster-mode", "cluster-state", "memory"):
        assert r[name].status is Status.PASS, r[name]
    # Plain RESP on a TLS-only port: the node closes the connection; reported as a failed session.
    r = await run(spec_for(redis_cluster_tls, tls=False))
    assert r["auth"].status is Status.FAIL and "could not open a session" in r["auth"].finding
    # A CA that did not sign the nodes' certificates.
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    r = await run(spec_for(redis_cluster_tls, ca_file=str(other_ca), password=CANARY))
    assert r["tls"].status is Status.FAIL and r["tls"].details["tls_failure"] == "untrusted"
    assert r["auth"].status is Status.SKIPPED
    assert_no_secret(r, CANARY)


def test_version_rules() -> None:
    assert server_identity({"redis_version": "7.0.15"}) == ("Redis", "7.0.15")
    valkey8 = {"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.0.1"}
    assert server_identity(valkey8) == ("Valkey", "8.0.1")
    assert version_ok("Valkey", "7.2.5", "7.1") and version_ok("Redis", "7.2.4", "7.1")
    assert version_ok("Redis", "7.1.0", "7.1") and not version_ok("Redis", "7.0.15", "7.1")


def test_cluster_nodes_parsing() -> None:
    text = ("a1 10.0.0.1:6379@16379,node-a.cache master - 0 0 1 connected 0-5460\n"
            "b2 10.0.0.2:6379@16379 myself,master - 0 0 2 connected 5461-10922 [10923->-c3]\n"
            "c3 10.0.0.3:6379@16379 slave a1 0 0 1 connected\n")
    nodes = parse_cluster_nodes(text)
    assert [n.endpoint for n in nodes if n.primary] == ["node-a.cache:6379", "10.0.0.2:6379"]
    assert [n.slots for n in nodes] == [5461, 5462, 0]
    assert parse_endpoint("[::1]:7000") == ("::1", 7000) and parse_endpoint("h") == ("h", 6379)
