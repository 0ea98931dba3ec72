"""Loopback stand-ins for the preflight's HTTPS peers: a registry + Clerk app, a CONNECT proxy, trustme CAs."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOOD_SK = "sk_test_CanaryClerkSecret0a1b2c3d4e5f"  # planted behind references; must never come back out
GOOD_PK = "pk_test_"  # completed per server: the frontend host it encodes is the stand-in's address


def publishable_key(host: str, env: str = "test") -> str:
    """A Clerk publishable key encoding `host` (pk_<env>_ + base64url("host$"), unpadded)."""
    import base64

    return f"pk_{env}_" + base64.urlsafe_b64encode(f"{host}$".encode()).decode().rstrip("=")


@dataclass
class Tls:
    ca_file: str
    server_context: ssl.SSLContext


def make_tls(folder: Path, *names: str) -> Tls:
    """A fresh trustme CA (written to `folder`) and a server context with a certificate for `names`."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    path = folder / f"ca-{id(ca)}.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(str(path), ctx)


@dataclass
class Server:
    """An HTTPS app on loopback answering as a registry (/v2/) and as Clerk (/v1/jwks, /.well-known/jwks.json).

    `delay` holds every answer back that many seconds; `seen_auth` records Authorization headers.
    """

    tls: Tls
    good_key: str = GOOD_SK
    delay: float = 0.0
    port: int = 0
    seen_auth: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: Any = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _app(self) -> Any:
        from aiohttp import web

        async def registry(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            await asyncio.sleep(self.delay)
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="https://x/token"'})

        async def jwks(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            await asyncio.sleep(self.delay)
            auth = request.headers.get("Authorization", "")
            self.seen_auth.append(auth)
            if auth == f"Bearer {self.good_key}":
                return web.json_response({"keys": [{"kid": "ins_1", "kty": "RSA"}]})
            return web.json_response({"errors": [{"code": "authentication_invalid"}]}, status=401)

        async def frontend(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            await asyncio.sleep(self.delay)
            return web.json_response({"keys": []})

        app = web.Application()
        app.router.add_get("/v2/", registry)
        app.router.add_get("/v1/jwks", jwks)
        app.router.add_get("/.well-known/jwks.json", frontend)
        return app

    def start(self) -> Server:
        from aiohttp import web

        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def boot() -> None:
            self._runner = web.AppRunner(self._app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls.server_context)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def main() -> None:
            loop.run_until_complete(boot())
            loop.run_forever()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        assert ready.wait(10), "stand-in did not start"
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


@contextlib.contextmanager
def serving(tls: Tls, **kw: Any) -> Iterator[Server]:
    server = Server(tls, **kw).start()
    try:
        yield server
    finally:
        server.stop()


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback that records the targets it tunnels to."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.targets.append(target)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            up_r, up_w = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(Exception):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                with contextlib.suppress(Exception):
                    dst.close()

            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def start(self) -> ConnectProxy:
        self._thread.start()

        async def boot() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
