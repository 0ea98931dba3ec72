"""TCP and TLS probes against loopback listeners: refused, timed out, name mismatch, untrusted, expired."""

from __future__ import annotations

import asyncio
import datetime
import errno
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from hfwizard.checks.net import TcpFailure, TlsFailure, classify_os_error, tcp_connect, tls_handshake
from tests.fixtures.servers import SilentListener


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start loopback TLS servers with a trustme certificate; returns (port, ca_file)."""
    servers: list[asyncio.Server] = []

    async def start(*names: str, expired: bool = False) -> tuple[int, str]:
        ca = trustme.CA()
        yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        cert = ca.issue_cert(*names, not_after=yesterday) if expired else ca.issue_cert(*names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ca_file = tmp_path / f"ca-{len(servers)}.pem"
        ca.cert_pem.write_to_path(str(ca_file))

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        return (server.sockets[0].getsockname()[1], str(ca_file))

    yield start
    for server in servers:
        server.close()


async def test_tcp_connect_ok(silent_listener: SilentListener) -> None:
    out = await tcp_connect("127.0.0.1", silent_listener.port, 2)
    assert out.ok and out.failure is None and out.address == "127.0.0.1"


async def test_tcp_refused_quickly(closed_port: int) -> None:
    out = await tcp_connect("127.0.0.1", closed_port, 2)
    assert not out.ok and out.failure is TcpFailure.REFUSED
    assert "refused" in out.detail and out.elapsed_s < 2


async def test_localhost_tries_every_address(closed_port: int) -> None:
    out = await tcp_connect("localhost", closed_port, 2)
    assert out.failure is TcpFailure.REFUSED


async def test_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver answers "no such name" here, as it would for a typo: asking the machine's real
    # resolver would send a query off this machine, which tests never do.
    import asyncio
    import socket

    async def no_such_name(self: object, host: str, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", no_such_name)
    out = await tcp_connect("hfwizard-test.invalid", 5432, 3)
    assert out.failure is TcpFailure.DNS and "hfwizard-test.invalid" in out.detail


def test_error_classification() -> None:
    assert classify_os_error(OSError(errno.EHOSTUNREACH, "No route to host")) is TcpFailure.UNREACHABLE
    assert classify_os_error(OSError(errno.ENETUNREACH, "Network is unreachable")) is TcpFailure.UNREACHABLE
    assert classify_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "x")) is TcpFailure.REFUSED
    assert classify_os_error(OSError(errno.ETIMEDOUT, "x")) is TcpFailure.TIMEOUT


async def test_tls_handshake_times_out_on_a_silent_listener(silent_listener: SilentListener) -> None:
    started = time.monotonic()
    out = await tls_handshake("127.0.0.1", silent_listener.port, timeout=0.5)
    elapsed = time.monotonic() - started
    assert out.failure is TlsFailure.TIMEOUT and out.tcp.ok
    assert "timed out after 0.5 s" in out.detail
    assert elapsed < 0.5 + 0.3


async def test_tls_verified(tls_server: Callable[..., object]) -> None:
    port, ca = await tls_server("localhost", "127.0.0.1")  # type: ignore[misc]
    out = await tls_handshake("127.0.0.1", port, timeout=3, ca_file=ca)
    assert out.ok and out.verified and "127.0.0.1" in out.cert_names
    out = await tls_handshake("localhost", port, timeout=3, ca_file=ca)
    assert out.ok and out.server_name == "localhost"


async def test_tls_name_mismatch_names_both_sides(tls_server: Callable[..., object]) -> None:
    port, ca = await tls_server("db.other.invalid")  # type: ignore[misc]
    out = await tls_handshake("127.0.0.1", port, timeout=3, ca_file=ca)
    assert out.failure is TlsFailure.NAME_MISMATCH
    assert out.detail.endswith("is not valid for 127.0.0.1; it is for db.other.invalid")
    # The name is what the caller says it is (SNI + check), not where it connects.
    out = await tls_handshake("127.0.0.1", port, timeout=3, ca_file=ca, server_name="db.other.invalid")
    assert out.ok


async def test_tls_untrusted_and_expired(tls_server: Callable[..., object], tmp_path: Path) -> None:
    port, _ = await tls_server("127.0.0.1")  # type: ignore[misc]
    out = await tls_handshake("127.0.0.1", port, timeout=3)  # system CAs do not know trustme's CA
    assert out.failure is TlsFailure.UNTRUSTED and "system's trusted CAs" in out.detail
    out = await tls_handshake("127.0.0.1", port, timeout=3, verify=False)
    assert out.ok and not out.verified
    port, ca = await tls_server("127.0.0.1", expired=True)  # type: ignore[misc]
    out = await tls_handshake("127.0.0.1", port, timeout=3, ca_file=ca)
    assert out.failure is TlsFailure.EXPIRED
    out = await tls_handshake("127.0.0.1", port, timeout=3, ca_file=str(tmp_path / "missing.pem"))
    assert out.failure is TlsFailure.CA_FILE and "missing.pem" in out.detail


async def test_tls_to_a_plain_port_is_a_protocol_failure(closed_port: int) -> None:
    server = await asyncio.start_server(lambda r, w: w.write(b"+PONG\r\n"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        out = await tls_handshake("127.0.0.1", port, timeout=2)
        assert out.failure is TlsFailure.PROTOCOL
    finally:
        server.close()
    out = await tls_handshake("127.0.0.1", closed_port, timeout=2)
    assert out.failure is TlsFailure.TCP and out.tcp.failure is TcpFailure.REFUSED


async def test_name_mismatch_through_a_connect_proxy_fails_fast(tls_server: Callable[..., object]) -> None:
    from tests.standins import ConnectProxy

    port, ca = await tls_server("db.other.invalid")  # type: ignore[misc]
    target = f"127.0.0.1:{port}"

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str | None:
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        return None if head.split(b" ", 2)[1] == b"200" else head.decode(errors="replace")

    proxy = ConnectProxy().start()
    try:
        started = time.monotonic()
        out = await tls_handshake("127.0.0.1", proxy.port, timeout=5, server_name="127.0.0.1", ca_file=ca,
                                  starttls=tunnel, peer=target)
        took = time.monotonic() - started
    finally:
        proxy.stop()
    assert out.failure is TlsFailure.NAME_MISMATCH
    # The follow-up that reads the certificate's names went through the same CONNECT tunnel: it got
    # them, at once, instead of waiting on a proxy that never saw a CONNECT line.
    assert out.cert_names == ("db.other.invalid",) and took < 1.5
    assert proxy.targets == [target, target]
    assert out.detail == f"certificate of {target} is not valid for 127.0.0.1; it is for db.other.invalid"
