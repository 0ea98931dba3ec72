"""Async network probes for checks: TCP connect and TLS handshake, returning outcomes instead of raising."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum


class TcpFailure(StrEnum):
    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    ERROR = "error"


class TlsFailure(StrEnum):
    TCP = "tcp"  # never got a connection: see TlsOutcome.tcp
    NOT_OFFERED = "not_offered"  # the protocol's STARTTLS-style request was declined
    NAME_MISMATCH = "name_mismatch"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"  # the peer closed or did not speak TLS
    CA_FILE = "ca_file"  # the CA file given cannot be read
    ERROR = "error"


@dataclass(frozen=True)
class TcpOutcome:
    """How a TCP connect went. `detail` is one line for people; `failure` is for code."""

    host: str
    port: int
    ok: bool
    failure: TcpFailure | None
    detail: str
    address: str | None = None  # the resolved address that answered (or was tried last)
    elapsed_s: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsOutcome:
    """How a TLS handshake went, with what the peer presented when it could be seen."""

    host: str
    port: int
    server_name: str
    ok: bool
    failure: TlsFailure | None
    detail: str
    tcp: TcpOutcome
    verified: bool = False  # chain (and name, when asked) checked against the CA
    protocol: str | None = None
    cipher: str | None = None
    cert_names: tuple[str, ...] = field(default_factory=tuple)
    not_after: str | None = None
    elapsed_s: float = 0.0


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Speaks a protocol's "switch to TLS" exchange (PostgreSQL's SSLRequest, SMTP's STARTTLS...) on a fresh
# connection; returns None when the peer agreed, or one line saying why not.
StartTls = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[str | None]]

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}

# OpenSSL X509_V_ERR_* codes, as exposed by ssl.SSLCertVerificationError.verify_code.
_NAME_CODES = {62, 63, 64}  # hostname, email, IP address mismatch
_EXPIRED_CODES = {10, 12}  # certificate / CRL has expired
_NOT_YET_CODES = {9, 11}
_UNTRUSTED_CODES = {2, 18, 19, 20, 21, 27, 28}


def classify_os_error(exc: OSError) -> TcpFailure:
    """Map a connect() error to the failure kinds checks report."""
    if isinstance(exc, socket.gaierror):
        return TcpFailure.DNS
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return TcpFailure.REFUSED
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return TcpFailure.TIMEOUT
    if exc.errno in _UNREACHABLE:
        return TcpFailure.UNREACHABLE
    return TcpFailure.ERROR


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_tcp(host: str, port: int, timeout: float) -> tuple[TcpOutcome, Streams | None]:
    """Resolve and connect within `timeout` seconds in all; on success the caller owns the streams."""
    started = time.monotonic()
    deadline = started + timeout
    loop = asyncio.get_running_loop()
    where = _fmt(host, port)

    def done(ok: bool, failure: TcpFailure | None, detail: str, address: str | None = None) -> TcpOutcome:
        return TcpOutcome(host, port, ok, failure, detail, address, round(time.monotonic() - started, 3))

    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except TimeoutError:
        return (done(False, TcpFailure.DNS, f"resolving {host} timed out after {timeout:g} s"), None)
    except socket.gaierror as exc:
        return (done(False, TcpFailure.DNS, f"cannot resolve {host}: {exc.strerror or exc}"), None)
    except (OSError, UnicodeError) as exc:
        return (done(False, TcpFailure.DNS, f"cannot resolve {host}: {exc}"), None)

    failures: list[tuple[TcpFailure, str, str]] = []
    timed_out = f"connecting to {where} timed out after {timeout:g} s"
    for family, type_, proto, _, sockaddr in infos:
        address = str(sockaddr[0])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failures.append((TcpFailure.TIMEOUT, address, timed_out))
            break
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(remaining):
                await loop.sock_connect(sock, sockaddr)
            reader, writer = await asyncio.open_connection(sock=sock)
        except TimeoutError:
            sock.close()
            failures.append((TcpFailure.TIMEOUT, address, timed_out))
            break
        except OSError as exc:
            sock.close()
            kind = classify_os_error(exc)
            reason = {TcpFailure.REFUSED: "connection refused", TcpFailure.UNREACHABLE: "network unreachable"}
            text = reason.get(kind) or (exc.strerror or str(exc))
            failures.append((kind, address, f"{where} ({address}): {text}"))
            continue
        return (done(True, None, f"connected to {where} ({address})", address), (reader, writer))

    if not failures:
        return (done(False, TcpFailure.DNS, f"{host} resolved to no usable address"), None)
    # With several addresses (localhost: ::1 then 127.0.0.1), report the most telling failure.
    order = [TcpFailure.TIMEOUT, TcpFailure.UNREACHABLE, TcpFailure.ERROR, TcpFailure.REFUSED]
    kind, address, text = min(failures, key=lambda f: order.index(f[0]))
    return (done(False, kind, text, address), None)


async def tcp_connect(host: str, port: int, timeout: float) -> TcpOutcome:
    """Can a TCP connection be opened? The connection is closed again at once."""
    outcome, streams = await open_tcp(host, port, timeout)
    if streams is not None:
        await close_streams(streams)
    return outcome


async def close_streams(streams: Streams, *, abort: bool = False) -> None:
    """Close a connection; `abort` drops it at once (after a failed or cancelled TLS handshake a
    graceful close can wait for a peer that never answers)."""
    writer = streams[1]
    if abort:
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError, ssl.SSLError):
        pass  # the peer is gone already or will not finish the TLS close: nothing to wait for


def make_context(ca_file: str | None, verify: bool = True, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context: the system's CAs, or only `ca_file` when given. OSError/SSLError on a bad file."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_file:
        from hfwizard.errors import BadInput
        from hfwizard.files import CA_LIMIT, check_regular

        try:  # OpenSSL would block on a FIFO and read a device until memory runs out
            check_regular(ca_file, what="CA file", limit=CA_LIMIT)
        except BadInput as exc:
            raise OSError(exc.message) from None
    return _verifying_context(ca_file, check_hostname, _trust_key(ca_file))


def _trust_key(ca_file: str | None) -> tuple[object, ...]:
    """What the trusted CAs depend on: the CA file as it is now, or the variables that pick the system's."""
    if ca_file:
        st = os.stat(ca_file)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    return (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=16)
def _verifying_context(ca_file: str | None, check_hostname: bool, _key: tuple[object, ...]) -> ssl.SSLContext:
    # Loading a CA bundle takes ~25 ms of the event loop; a preflight makes half a dozen TLS checks
    # at once, so one context per bundle is shared (a context is safe to share between connections).
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    ctx.check_hostname = check_hostname
    return ctx


def _names(cert: dict[str, object]) -> tuple[str, ...]:
    san = cert.get("subjectAltName") or ()
    names = [str(value) for _, value in san] if isinstance(san, tuple) else []
    if not names:
        for rdn in cert.get("subject") or ():  # type: ignore[attr-defined]
            names += [str(v) for k, v in rdn if k == "commonName"]
    return tuple(names)


async def tls_handshake(
    host: str,
    port: int,
    *,
    timeout: float,
    server_name: str | None = None,
    ca_file: str | None = None,
    verify: bool = True,
    check_hostname: bool = True,
    starttls: StartTls | None = None,
    peer: str | None = None,
) -> TlsOutcome:
    """Connect and complete a TLS handshake within `timeout` seconds in all.

    `server_name` is sent as SNI and checked against the certificate (default: `host`); `ca_file`
    replaces the system CAs; `verify=False` only proves TLS works; `starttls` runs first on the plain
    connection for protocols that switch to TLS in-band, or to open a proxy's CONNECT tunnel. `peer`
    names the far end in details when it is not host:port (the tunnelled target behind a proxy).
    """
    started = time.monotonic()
    deadline = started + timeout
    name = server_name or host

    def done(ok: bool, failure: TlsFailure | None, detail: str, tcp: TcpOutcome, **kw: object) -> TlsOutcome:
        return TlsOutcome(host, port, name, ok, failure, detail, tcp,
                          elapsed_s=round(time.monotonic() - started, 3), **kw)  # type: ignore[arg-type]

    try:
        ctx = make_context(ca_file, verify, check_hostname)
    except (OSError, ssl.SSLError) as exc:
        never = TcpOutcome(host, port, False, None, "not attempted")
        why = getattr(exc, "strerror", None) or str(exc)
        return done(False, TlsFailure.CA_FILE, f"cannot use CA file {ca_file}: {why}", never)

    tcp, streams = await open_tcp(host, port, timeout)
    if streams is None:
        return done(False, TlsFailure.TCP, tcp.detail, tcp)
    where = peer or _fmt(host, port)
    ok = False
    try:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                if starttls is not None:
                    declined = await starttls(*streams)
                    if declined is not None:
                        return done(False, TlsFailure.NOT_OFFERED, declined, tcp)
                await streams[1].start_tls(ctx, server_hostname=name)
        except TimeoutError:
            return done(False, TlsFailure.TIMEOUT,
                        f"TLS handshake with {where} timed out after {timeout:g} s", tcp)
        except ssl.SSLCertVerificationError as exc:
            # A second look at the certificate must reach the same peer the same way: through the
            # same starttls exchange (or proxy tunnel), else it talks to something else or hangs.
            def again(budget: float) -> Awaitable[TlsOutcome]:
                return tls_handshake(host, port, timeout=budget, server_name=name, ca_file=ca_file,
                                     check_hostname=False, starttls=starttls, peer=peer)

            return await _verification_failed(exc, where, name, ca_file, deadline, tcp, done, again)
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            return done(False, TlsFailure.PROTOCOL, f"TLS handshake with {where} failed: {reason}", tcp)
        except OSError as exc:
            return done(False, TlsFailure.ERROR, f"TLS handshake with {where} failed: {exc}", tcp)
        ok = True
        tls = streams[1].get_extra_info("ssl_object")
        cert = tls.getpeercert() if tls is not None and verify else None
        cipher = tls.cipher() if tls is not None else None
        return done(True, None, f"TLS {tls.version() if tls else '?'} with {where}"
                    + (" (certificate verified)" if verify else " (certificate not verified)"), tcp,
                    verified=verify, protocol=tls.version() if tls else None,
                    cipher=cipher[0] if cipher else None,
                    cert_names=_names(cert) if cert else (),
                    not_after=str(cert.get("notAfter")) if cert else None)
    finally:
        await close_streams(streams, abort=not ok)


async def _verification_failed(exc: ssl.SSLCertVerificationError, where: str, name: str, ca_file: str | None,
                               deadline: float, tcp: TcpOutcome, done: Callable[..., TlsOutcome],
                               again: Callable[[float], Awaitable[TlsOutcome]]) -> TlsOutcome:
    code = exc.verify_code
    message = exc.verify_message or str(exc)
    if code in _NAME_CODES:
        # Say which names the certificate does carry: a second handshake that checks the chain only.
        names: tuple[str, ...] = ()
        remaining = deadline - time.monotonic()
        if remaining > 0.05:
            names = (await again(remaining)).cert_names
        listed = f"; it is for {', '.join(names)}" if names else ""
        return done(False, TlsFailure.NAME_MISMATCH, f"certificate of {where} is not valid for {name}{listed}",
                    tcp, cert_names=names)
    if code in _EXPIRED_CODES:
        return done(False, TlsFailure.EXPIRED, f"certificate of {where} has expired", tcp)
    if code in _NOT_YET_CODES:
        return done(False, TlsFailure.NOT_YET_VALID, f"certificate of {where} is not valid yet", tcp)
    if code in _UNTRUSTED_CODES:
        source = f"CA file {ca_file}" if ca_file else "the system's trusted CAs"
        return done(False, TlsFailure.UNTRUSTED, f"certificate of {where} is not signed by {source} ({message})",
                    tcp)
    return done(False, TlsFailure.ERROR, f"certificate of {where} rejected: {message}", tcp)
