"""A small HTTPS probe for checks: one GET over net's TCP/TLS primitives, proxy-aware, stage by stage."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from hfwizard.checks.net import Streams, TcpFailure, make_context, open_tcp, tls_handshake

MAX_HEADER_BYTES = 64 * 1024


class Stage(StrEnum):
    """Where a probe stopped: the first stage that did not work."""

    URL = "url"
    DNS = "dns"
    TCP = "tcp"
    PROXY = "proxy"
    TLS = "tls"
    HTTP = "http"


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy that tunnels with CONNECT. `shown` is its address without credentials."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # Proxy-Authorization value; a secret

    @property
    def shown(self) -> str:
        return f"http://{_hostport(self.host, self.port)}"


@dataclass(frozen=True)
class HttpOutcome:
    """How a GET went: `ok` when an HTTP answer came back (any status); else `stage` says what broke."""

    url: str
    ok: bool
    stage: Stage | None
    detail: str  # one line for people; never a header value or a body
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    proxy: str | None = None  # the proxy used, without credentials
    tls_version: str | None = None
    elapsed_s: float = 0.0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def proxy_from_environment(url: str) -> Proxy | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY (or ALL_PROXY) names for `url`, unless NO_PROXY exempts its host."""
    parts = urlsplit(url)
    if not any(value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
               for name, value in os.environ.items()):
        # No proxy named at all, as on most machines: direct, without importing urllib.request (5 ms at
        # the first step of every outbound check, before its request goes out).
        return None
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(parts.scheme) or proxies.get("all")
    if not chosen or not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # proxy_bypass_environment reads NO_PROXY the way urllib and requests do; typeshed does not list it.
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009
    if bypass(_hostport(parts.hostname, port), proxies) or bypass(parts.hostname, proxies):
        return None
    return parse_proxy(chosen)


def parse_proxy(text: str) -> Proxy | None:
    """`http://[user:password@]host:port` (scheme optional) as a Proxy; None when it cannot be used."""
    if "://" not in text:
        text = "http://" + text
    try:
        p = urlsplit(text)
        port = p.port or 8080
    except ValueError:
        return None
    if not p.hostname or p.scheme not in ("http", ""):
        return None
    auth = None
    if p.username is not None:
        raw = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
        auth = "Basic " + base64.b64encode(raw).decode("ascii")
    return Proxy(p.hostname, port, auth)


async def _tunnel(streams: Streams, host: str, port: int, proxy: Proxy) -> str | None:
    """Ask the proxy for a CONNECT tunnel; None when it agreed, else one line saying why not."""
    reader, writer = streams
    target = _hostport(host, port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", "User-Agent: hfwizard-preflight"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    await writer.drain()
    status, reason, _ = await _read_head(reader)
    if status == 407:
        return f"proxy {proxy.shown} wants credentials (407): put them in HTTPS_PROXY as http://user:pass@host:port"
    if status // 100 != 2:
        return f"proxy {proxy.shown} refused CONNECT {target}: {status} {reason}".rstrip()
    return None


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    """Status line and headers of an HTTP/1.x response. Raises ValueError on anything else."""
    line = await reader.readuntil(b"\r\n")
    parts = line.decode("latin-1").strip().split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("the answer is not HTTP")
    status, reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
    headers: dict[str, str] = {}
    size = len(line)
    while True:
        line = await reader.readuntil(b"\r\n")
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise ValueError("the answer's headers are too large")
        if line == b"\r\n":
            return status, reason, headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def http_get(url: str, *, timeout: float, headers: Mapping[str, str] | None = None,
                   ca_file: str | None = None, proxy: Proxy | bool | None = True) -> HttpOutcome:
    """GET `url` within `timeout` seconds in all and read the status line and headers (not the body).

    `proxy=True` takes the proxy from the environment (HTTPS_PROXY, NO_PROXY); False or None goes
    direct; a Proxy uses that one. `ca_file` replaces the system CAs (which honour SSL_CERT_FILE).
    Header values sent (a bearer token) never appear in the outcome.
    """
    started = time.monotonic()
    deadline = started + timeout

    def left() -> float:
        return max(deadline - time.monotonic(), 0.001)

    def out(ok: bool, stage: Stage | None, detail: str, **kw: object) -> HttpOutcome:
        return HttpOutcome(url, ok, stage, detail, elapsed_s=round(time.monotonic() - started, 3),
                           proxy=via.shown if via else None, **kw)  # type: ignore[arg-type]

    via: Proxy | None = None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return out(False, Stage.URL, f"{url!r} is not a usable URL")
    if parts.scheme not in ("http", "https") or not host:
        return out(False, Stage.URL, f"{url!r} is not an http(s) URL with a host")
    via = proxy_from_environment(url) if proxy is True else (proxy or None)
    where = _hostport(host, port)

    if via is not None:
        tcp, streams = await open_tcp(via.host, via.port, timeout)
        if streams is None:
            return out(False, Stage.PROXY, f"cannot reach proxy {via.shown}: {tcp.detail}")
    else:
        tcp, streams = await open_tcp(host, port, timeout)
        if streams is None:
            return out(False, Stage.DNS if tcp.failure is TcpFailure.DNS else Stage.TCP, tcp.detail)
    tls_version: str | None = None
    try:
        if via is not None:
            try:
                async with asyncio.timeout(left()):
                    refused = await _tunnel(streams, host, port, via)
            except TimeoutError:
                return out(False, Stage.PROXY,
                           f"proxy {via.shown} did not answer CONNECT {where} within {timeout:g} s")
            except (ValueError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return out(False, Stage.PROXY, f"proxy {via.shown} closed or garbled the CONNECT to {where}")
            if refused:
                return out(False, Stage.PROXY, refused)
        if parts.scheme == "https":
            try:
                ctx = make_context(ca_file)
            except (OSError, ssl.SSLError):
                return out(False, Stage.TLS, f"cannot use CA file {ca_file}")
            try:
                async with asyncio.timeout(left()):
                    await streams[1].start_tls(ctx, server_hostname=host)
            except TimeoutError:
                return out(False, Stage.TLS, f"TLS handshake with {where} timed out after {timeout:g} s")
            except ssl.SSLCertVerificationError:
                return out(False, Stage.TLS, await _explain_tls(host, port, via, ca_file, left()))
            except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, EOFError, OSError) as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                return out(False, Stage.TLS, f"TLS handshake with {where} failed: {reason}")
            tls = streams[1].get_extra_info("ssl_object")
            tls_version = tls.version() if tls is not None else None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {path} HTTP/1.1", f"Host: {where if parts.port else where.rsplit(':', 1)[0]}",
                 "User-Agent: hfwizard-preflight", "Accept: application/json, */*", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            async with asyncio.timeout(left()):
                streams[1].write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                await streams[1].drain()
                status, reason, got = await _read_head(streams[0])
        except TimeoutError:
            return out(False, Stage.HTTP, f"{where} sent no HTTP answer within {timeout:g} s",
                       tls_version=tls_version)
        except (ValueError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            return out(False, Stage.HTTP, f"{where} closed the connection or did not answer in HTTP",
                       tls_version=tls_version)
        return out(True, None, f"{where} answered {status} {reason}".rstrip(), status=status, headers=got,
                   tls_version=tls_version)
    finally:
        # A probe needs no orderly TLS shutdown, and a peer that never finished the handshake would
        # hold a graceful close for a second: drop the connection.
        streams[1].transport.abort()


async def _explain_tls(host: str, port: int, via: Proxy | None, ca_file: str | None, timeout: float) -> str:
    """Why a certificate was refused, in net's words (name mismatch, untrusted, expired...), reaching the
    host the same way the probe did: straight, or through the proxy's CONNECT tunnel."""
    if via is None:
        again = await tls_handshake(host, port, timeout=timeout, ca_file=ca_file)
    else:
        async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str | None:
            return await _tunnel((reader, writer), host, port, via)

        again = await tls_handshake(via.host, via.port, timeout=timeout, server_name=host, ca_file=ca_file,
                                    starttls=connect, peer=_hostport(host, port))
    return again.detail if not again.ok else f"certificate of {_hostport(host, port)} was refused"
