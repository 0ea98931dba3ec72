"""Outbound checks against loopback HTTPS stand-ins (trustme CAs), a CONNECT proxy, and dead sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfwizard.checks.base import Status
from hfwizard.checks.http import http_get, parse_proxy, proxy_from_environment
from hfwizard.checks.outbound import (
    check_destination,
    clerk_api_destination,
    clerk_frontend_destination,
    registry_destination,
)
from tests.standins import ConnectProxy, Server, Tls, make_tls, serving

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy", "SSL_CERT_FILE")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def server(tls: Tls) -> Iterator[Server]:
    with serving(tls) as s:
        yield s


async def test_registry_answering_401_is_alive(server: Server, tls: Tls) -> None:
    got = await check_destination(registry_destination(server.url), timeout=5, ca_file=tls.ca_file)
    assert got.status is Status.PASS, got
    assert "401" in got.finding and "TLS" in got.finding
    assert got.details["http_status"] == 401


async def test_registry_url_that_is_not_a_registry_fails(server: Server, tls: Tls) -> None:
    got = await check_destination(registry_destination(server.url + "/not-here"), timeout=5, ca_file=tls.ca_file)
    assert got.status is Status.FAIL
    assert "404" in got.finding and got.remedy


async def test_clerk_destinations_take_any_http_answer(server: Server, tls: Tls) -> None:
    for dest in (clerk_frontend_destination(server.host), clerk_api_destination(server.url)):
        got = await check_destination(dest, timeout=5, ca_file=tls.ca_file)
        assert got.status is Status.PASS, got


async def test_tls_name_mismatch_fails_naming_the_host(tmp_path: Path) -> None:
    other = make_tls(tmp_path, "registry.other.invalid")
    with serving(other) as s:
        got = await check_destination(registry_destination(s.url), timeout=5, ca_file=other.ca_file)
    assert got.status is Status.FAIL
    assert got.details["stage"] == "tls"
    assert "not valid for 127.0.0.1" in got.finding and "registry.other.invalid" in got.finding


async def test_untrusted_certificate_fails(server: Server) -> None:
    got = await check_destination(registry_destination(server.url), timeout=5)  # system CAs only
    assert got.status is Status.FAIL and got.details["stage"] == "tls"
    assert "not signed by" in got.finding
    assert got.remedy and "SSL_CERT_FILE" in got.remedy


async def test_ssl_cert_file_is_honoured(server: Server, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_file)
    got = await check_destination(registry_destination(server.url), timeout=5)
    assert got.status is Status.PASS, got


async def test_closed_port_fails_fast(closed_port: int) -> None:
    started = time.monotonic()
    got = await check_destination(registry_destination(f"https://127.0.0.1:{closed_port}"), timeout=3)
    assert got.status is Status.FAIL and got.details["stage"] == "tcp"
    assert "refused" in got.finding
    assert time.monotonic() - started < 1.0


async def test_silent_listener_fails_inside_its_timeout(silent_listener: object) -> None:
    port = silent_listener.port  # type: ignore[attr-defined]
    started = time.monotonic()
    got = await check_destination(registry_destination(f"https://127.0.0.1:{port}"), timeout=0.5)
    took = time.monotonic() - started
    assert got.status is Status.FAIL and got.details["stage"] == "tls"
    assert "timed out" in got.finding
    assert 0.4 <= took < 1.0


async def test_plain_http_silent_listener_fails_at_http_stage(silent_listener: object) -> None:
    port = silent_listener.port  # type: ignore[attr-defined]
    got = await http_get(f"http://127.0.0.1:{port}/v2/", timeout=0.4, proxy=False)
    assert not got.ok and got.stage is not None and got.stage.value == "http"


async def test_connect_proxy_from_https_proxy(server: Server, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy().start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        got = await check_destination(registry_destination(server.url), timeout=5, ca_file=tls.ca_file)
        assert got.status is Status.PASS, got
        assert f"through proxy http://127.0.0.1:{proxy.port}" in got.finding
        assert proxy.targets == [server.host]
        # NO_PROXY exempts the host: straight there, the proxy sees nothing more.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        got = await check_destination(registry_destination(server.url), timeout=5, ca_file=tls.ca_file)
        assert got.status is Status.PASS and "proxy" not in got.finding
        assert proxy.targets == [server.host]
    finally:
        proxy.stop()


async def test_name_mismatch_is_explained_through_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_tls(tmp_path, "registry.other.invalid")
    proxy = ConnectProxy().start()
    try:
        with serving(other) as s:
            monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{proxy.port}")
            got = await check_destination(registry_destination(s.url), timeout=5, ca_file=other.ca_file)
        assert got.status is Status.FAIL and got.details["stage"] == "tls"
        assert f"127.0.0.1:{s.port}" in got.finding and "registry.other.invalid" in got.finding
        # The probe, net's verified handshake that classifies the refusal, and its chain-only look at the
        # certificate's names: every one through the tunnel.
        assert proxy.targets == [s.host] * 3
    finally:
        proxy.stop()


async def test_dead_proxy_is_named(server: Server, closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:pw-Canary@127.0.0.1:{closed_port}")
    got = await check_destination(registry_destination(server.url), timeout=2)
    assert got.status is Status.FAIL and got.details["stage"] == "proxy"
    assert f"127.0.0.1:{closed_port}" in got.finding
    assert "pw-Canary" not in repr(got)


def test_proxy_parsing_keeps_credentials_out_of_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = parse_proxy("http://alice:s%40cret@proxy.corp:3128")
    assert proxy is not None and proxy.port == 3128 and proxy.authorization
    assert "s@cret" not in proxy.shown and "s@cret" not in repr(proxy)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", ".internal,localhost")
    assert proxy_from_environment("https://ghcr.io/v2/") is not None
    assert proxy_from_environment("https://registry.internal/v2/") is None


def test_no_proxy_variable_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shortcut taken before urllib.request is imported: only NO_PROXY, or an empty proxy variable,
    # names no proxy; a lowercase or ALL_PROXY one still does.
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("HTTPS_PROXY", "")
    assert proxy_from_environment("https://ghcr.io/v2/") is None
    monkeypatch.setenv("all_proxy", "proxy.corp:3128")
    got = proxy_from_environment("https://ghcr.io/v2/")
    assert got is None  # NO_PROXY=* still exempts every host
    monkeypatch.delenv("NO_PROXY")
    got = proxy_from_environment("https://ghcr.io/v2/")
    assert got is not None and got.port == 3128
