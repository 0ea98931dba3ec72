"""PostgreSQL checks against real PostgreSQL 17.2 and 15 servers started by the fixtures."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.checks.postgres import PostgresSpec, parse_version, postgres_checks, version_from_num
from tests.fixtures.servers import PG_CREATOR, PG_PASSWORD, PgServer, SilentListener

CANARY = "Canary-WRONG-pw-4c1d9e77"  # a wrong password: it too must never surface


def spec_for(server: PgServer, **over: object) -> PostgresSpec:
    base = PostgresSpec(host=server.host, port=server.port, database=server.database, user=server.user,
                        password=server.password, sslmode="disable", timeout_s=5.0)
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


async def run(spec: PostgresSpec) -> dict[str, CheckResult]:
    checks = postgres_checks(spec)
    results = await asyncio.gather(*(asyncio.wait_for(c.run(), c.timeout_s) for c in checks))
    return {r.id.split("/", 1)[1]: r for r in results}


def assert_no_secret(results: dict[str, CheckResult], *secrets: str) -> None:
    for r in results.values():
        text = repr(r) + str(r.details)
        for secret in secrets:
            assert secret not in text, f"{r.id} leaks a secret"


async def test_pg17_passes(pg17: PgServer) -> None:
    r = await run(spec_for(pg17))
    for name in ("reachable", "auth", "version", "database"):
        assert r[name].status is Status.PASS, r[name]
    assert r["version"].finding.startswith("PostgreSQL 17.2 ")
    assert r["tls"].status is Status.WARN and "sslmode=disable" in r["tls"].finding
    assert "owner" in r["database"].finding
    assert_no_secret(r, PG_PASSWORD)


async def test_pg15_fails_naming_the_version(pg15: PgServer) -> None:
    r = await run(spec_for(pg15))
    assert r["auth"].status is Status.PASS
    assert r["version"].status is Status.FAIL
    assert r["version"].finding.startswith("PostgreSQL 15.")
    assert "17.2 or newer required" in r["version"].finding
    assert r["version"].remedy


async def test_wrong_password_is_an_auth_failure_not_unreachable(pg17: PgServer,
                                                                 caplog: pytest.LogCaptureFixture,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    r = await run(spec_for(pg17, password=CANARY))
    assert r["reachable"].status is Status.PASS
    assert r["auth"].status is Status.FAIL
    assert r["auth"].finding == f"authentication failed for user {pg17.user}"
    assert "unreachable" not in r["auth"].finding
    assert r["version"].status is Status.SKIPPED and r["database"].status is Status.SKIPPED
    assert_no_secret(r, CANARY, PG_PASSWORD)
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert CANARY not in text and PG_PASSWORD not in text


async def test_closed_port_refused_and_later_checks_skipped(closed_port: int) -> None:
    spec = PostgresSpec(host="127.0.0.1", port=closed_port, password=CANARY, sslmode="disable", timeout_s=3)
    started = time.monotonic()
    r = await run(spec)
    assert time.monotonic() - started < 3
    assert r["reachable"].status is Status.FAIL and "refused" in r["reachable"].finding
    for name in ("auth", "version", "database"):
        assert r[name].status is Status.SKIPPED and "not reached" in r[name].finding
    assert_no_secret(r, CANARY)


async def test_silent_listener_times_out_within_timeout(silent_listener: SilentListener) -> None:
    spec = PostgresSpec(host=silent_listener.host, port=silent_listener.port, password=CANARY,
                        sslmode="verify-full", timeout_s=1.0)
    started = time.monotonic()
    r = await run(spec)
    elapsed = time.monotonic() - started
    assert r["reachable"].status is Status.PASS  # TCP is accepted...
    assert r["tls"].status is Status.FAIL and "timed out" in r["tls"].finding  # ...nothing answers
    assert r["auth"].status is Status.SKIPPED
    assert elapsed < 1.0 + 0.5


async def test_silent_listener_login_times_out(silent_listener: SilentListener) -> None:
    spec = PostgresSpec(host=silent_listener.host, port=silent_listener.port, password=CANARY,
                        sslmode="disable", timeout_s=1.0)
    started = time.monotonic()
    r = await run(spec)
    assert r["auth"].status is Status.FAIL and "timed out" in r["auth"].finding
    assert time.monotonic() - started < 1.0 + 0.5


async def test_tls_verify_full_passes(pg17_tls: PgServer) -> None:
    r = await run(spec_for(pg17_tls, sslmode="verify-full", sslrootcert=pg17_tls.ca_file))
    assert all(x.status is Status.PASS for x in r.values()), r
    assert "host name verified" in r["tls"].finding


async def test_tls_name_mismatch_fails_naming_it(pg17_tls_other_name: PgServer) -> None:
    server = pg17_tls_other_name
    r = await run(spec_for(server, sslmode="verify-full", sslrootcert=server.ca_file))
    tls = r["tls"]
    assert tls.status is Status.FAIL
    assert "not valid for 127.0.0.1" in tls.finding and "db.other.invalid" in tls.finding
    assert tls.details["tls_failure"] == "name_mismatch"
    assert r["auth"].status is Status.SKIPPED
    # verify-ca checks the chain only: the same server passes.
    r = await run(spec_for(server, sslmode="verify-ca", sslrootcert=server.ca_file))
    assert r["tls"].status is Status.PASS and r["auth"].status is Status.PASS


async def test_tls_untrusted_ca(pg17_tls: PgServer, pg17_tls_other_name: PgServer) -> None:
    # The other server's CA did not sign this server's certificate.
    r = await run(spec_for(pg17_tls, sslmode="verify-full", sslrootcert=pg17_tls_other_name.ca_file))
    assert r["tls"].status is Status.FAIL and r["tls"].details["tls_failure"] == "untrusted"


async def test_tls_required_but_not_offered(pg17: PgServer) -> None:
    r = await run(spec_for(pg17, sslmode="require"))
    assert r["tls"].status is Status.FAIL and "does not accept TLS" in r["tls"].finding
    r = await run(spec_for(pg17, sslmode="prefer"))
    assert r["tls"].status is Status.WARN and r["auth"].status is Status.PASS


async def test_missing_database(pg17: PgServer) -> None:
    r = await run(spec_for(pg17, database="not_there"))
    assert r["auth"].status is Status.PASS and r["version"].status is Status.PASS
    assert r["database"].status is Status.FAIL and "cannot create it" in r["database"].finding
    r = await run(spec_for(pg17, database="not_there", user=PG_CREATOR))
    assert r["database"].status is Status.PASS and "CREATEDB" in r["database"].finding


def test_version_parsing() -> None:
    assert parse_version("15.18 (Debian 15.18-0+deb12u1)") == (15, 18)
    assert parse_version("17.2") == (17, 2)
    assert version_from_num(170002) == (17, 2)
    assert version_from_num(90624) == (9, 6)
    assert "xxxxxxxx" not in repr(PostgresSpec(host="h", password="x" * 8))
