"""Clerk checks: key format and pairing offline, and the secret key against a loopback Clerk stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hfwizard.checks.base import Status
from hfwizard.checks.clerk import check_keys, check_secret_accepted
from hfwizard.checks.inputs import fixed_secret, secret_getter
from tests.standins import GOOD_SK, Server, Tls, make_tls, publishable_key, serving

LIVE_SK = "sk_live_CanaryLiveSecret9z8y7x6w5v"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1")


@pytest.fixture(scope="module")
def clerk(tls: Tls) -> Iterator[Server]:
    with serving(tls) as s:
        yield s


def _no_secret(*results: object) -> None:
    for r in results:
        assert GOOD_SK not in repr(r) and LIVE_SK not in repr(r)


async def test_good_key_pair_passes() -> None:
    got = await check_keys(publishable_key("clerk.example.test"), fixed_secret(GOOD_SK), secret_ref="env:CLERK_SK")
    assert got.status is Status.PASS, got
    assert "clerk.example.test" in got.finding
    _no_secret(got)


async def test_test_and_live_keys_do_not_pair() -> None:
    got = await check_keys(publishable_key("clerk.acme.example", "live"), fixed_secret(GOOD_SK),
                           secret_ref="env:CLERK_SK")
    assert got.status is Status.FAIL
    assert "live key" in got.finding and "test key" in got.finding and "env:CLERK_SK" in got.finding
    _no_secret(got)


async def test_malformed_keys_fail_without_showing_them() -> None:
    got = await check_keys(publishable_key("a.example"), fixed_secret("hunter2-Canary"), secret_ref="env:X")
    assert got.status is Status.FAIL and "not a Clerk secret key" in got.finding
    assert "hunter2-Canary" not in repr(got)
    swapped = publishable_key("a.example")
    got = await check_keys(swapped, fixed_secret(swapped), secret_ref="env:X")
    assert got.status is Status.FAIL and "publishable key" in got.finding
    got = await check_keys("pk_test_bm90IGEgaG9zdA", fixed_secret(GOOD_SK), secret_ref=None)
    assert got.status is Status.FAIL and "clerk.publishableKey" in got.finding
    got = await check_keys(None, fixed_secret(GOOD_SK), secret_ref=None)
    assert got.status is Status.FAIL and "not set" in got.finding


async def test_unresolvable_reference_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HFW_TEST_MISSING_SK", raising=False)
    got = await check_keys(publishable_key("a.example"), secret_getter("env:HFW_TEST_MISSING_SK"),
                           secret_ref="env:HFW_TEST_MISSING_SK")
    assert got.status is Status.FAIL
    assert "HFW_TEST_MISSING_SK" in got.finding and got.remedy


async def test_file_reference_resolves(tmp_path: Path) -> None:
    (tmp_path / "sk").write_text(GOOD_SK + "\n")
    got = await check_keys(publishable_key("a.example"), secret_getter("file:sk", base_dir=tmp_path),
                           secret_ref="file:sk")
    assert got.status is Status.PASS, got


async def test_clerk_accepts_the_good_key(clerk: Server, tls: Tls) -> None:
    got = await check_secret_accepted(clerk.url, fixed_secret(GOOD_SK), timeout=5, ca_file=tls.ca_file,
                                      secret_ref="env:CLERK_SK")
    assert got.status is Status.PASS, got
    assert clerk.seen_auth[-1] == f"Bearer {GOOD_SK}"
    assert clerk.paths[-1] == "/v1/jwks"
    _no_secret(got)


async def test_clerk_rejects_a_revoked_key(clerk: Server, tls: Tls) -> None:
    got = await check_secret_accepted(clerk.url + "/v1/", fixed_secret(LIVE_SK), timeout=5, ca_file=tls.ca_file,
                                      secret_ref="env:CLERK_SK")
    assert got.status is Status.FAIL
    assert got.finding.startswith("Clerk rejected the secret key (env:CLERK_SK)")
    assert clerk.paths[-1] == "/v1/jwks"  # an apiUrl ending in /v1 is not doubled
    _no_secret(got)


async def test_clerk_api_with_the_wrong_certificate_fails(tmp_path: Path) -> None:
    other = make_tls(tmp_path, "api.clerk.invalid")
    with serving(other) as s:
        got = await check_secret_accepted(s.url, fixed_secret(GOOD_SK), timeout=5, ca_file=other.ca_file)
    assert got.status is Status.FAIL and "not valid for 127.0.0.1" in got.finding
    assert s.seen_auth == []  # the key never went to a server whose certificate did not match
    _no_secret(got)


async def test_clerk_down_fails_inside_the_timeout(closed_port: int) -> None:
    got = await check_secret_accepted(f"https://127.0.0.1:{closed_port}", fixed_secret(GOOD_SK), timeout=2)
    assert got.status is Status.FAIL and "refused" in got.finding
