"""PostgreSQL preflight checks: reachable, TLS as configured, authentication, version 17.2+, database."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hfwizard import requirements
from hfwizard.checks import net
from hfwizard.checks.base import Check, CheckResult, Status, guarded, result
from hfwizard.checks.threads import imported, in_thread

log = logging.getLogger(__name__)

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's "switch to TLS?" message
_FALLBACK_DATABASES = ("postgres", "template1")


@dataclass(frozen=True)
class PostgresSpec:
    """Where and how to reach the platform's PostgreSQL. `password` is the resolved secret: never shown."""

    host: str
    port: int = 5432
    database: str = "highflame"
    user: str = "highflame"
    password: str = field(default="", repr=False)
    sslmode: str = "verify-full"
    sslrootcert: str | None = None  # CA bundle; None = the system's trusted CAs
    min_version: str = requirements.POSTGRES.text
    timeout_s: float = 10.0
    databases: tuple[str, ...] = ()  # the services' own databases (create-database checks them)
    # Or where to learn them when the check runs (the platform catalog: parsing it costs 0.06 s of CPU,
    # which would otherwise delay every check's start). Empty answer: not checked.
    databases_from: Callable[[], tuple[str, ...]] | None = field(default=None, compare=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Failure(StrEnum):
    AUTH = "auth"  # the server rejected the credentials
    HBA = "hba"  # pg_hba.conf has no line for this user/host/TLS combination
    DB_MISSING = "db_missing"  # authenticated; the database does not exist
    DB_DENIED = "db_denied"  # authenticated; no CONNECT privilege on the database
    TIMEOUT = "timeout"
    TLS = "tls"
    OTHER = "other"


@dataclass
class _Session:
    """What one look inside the server found. Filled by _PostgresProbe.session()."""

    authenticated: bool = False
    failure: _Failure | None = None
    error: str = ""
    connected_to: str | None = None
    version_num: int | None = None
    version_text: str | None = None
    superuser: bool = False
    createdb: bool = False
    db_exists: bool | None = None
    db_owner: str | None = None
    db_connect: bool | None = None
    db_create: bool | None = None
    target_error: str = ""  # why the target database refused a session, when it did
    public_create: bool | None = None  # CREATE on schema public in the target database


def parse_version(text: str) -> tuple[int, ...]:
    """"17.2" -> (17, 2); "15.18 (Debian 15.18-0+deb12u1)" -> (15, 18); "18beta1" -> (18,)."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def version_from_num(num: int) -> tuple[int, int]:
    """server_version_num to (major, minor): 170002 -> (17, 2); 90624 -> (9, 6)."""
    return (num // 10000, num % 10000) if num >= 100000 else (num // 10000, (num // 100) % 100)


class _PostgresProbe:
    """Runs each network step once, however many checks ask, and keeps what it learnt."""

    def __init__(self, spec: PostgresSpec) -> None:
        self.spec = spec
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def _once(self, name: str, make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        task = self._tasks.get(name)
        if task is None:
            task = asyncio.ensure_future(make())
            self._tasks[name] = task
        # Shielded: one check's timeout must not cancel work the other checks share.
        return asyncio.shield(task)

    def scrub(self, text: str) -> str:
        text = " ".join(str(text).split())
        if self.spec.password:
            text = text.replace(self.spec.password, "***")
        return text.removeprefix("connection failed: ")

    async def tcp(self) -> net.TcpOutcome:
        outcome: net.TcpOutcome = await self._once(
            "tcp", lambda: net.tcp_connect(self.spec.host, self.spec.port, self.spec.timeout_s))
        return outcome

    def _tls_plan(self) -> tuple[bool, bool] | None:
        """(verify chain, check name) for the configured sslmode; None when TLS is not attempted."""
        mode = self.spec.sslmode
        if mode == "disable":
            return None
        if mode == "verify-full":
            return (True, True)
        # libpq: `require` with a root CA file present verifies the chain, like verify-ca.
        if mode == "verify-ca" or (mode == "require" and self.spec.sslrootcert):
            return (True, False)
        return (False, False)

    async def tls(self) -> net.TlsOutcome | None:
        plan = self._tls_plan()
        if plan is None:
            return None
        verify, check_name = plan
        outcome: net.TlsOutcome = await self._once("tls", lambda: net.tls_handshake(
            self.spec.host, self.spec.port, timeout=self.spec.timeout_s, ca_file=self.spec.sslrootcert,
            verify=verify, check_hostname=check_name, starttls=_ssl_request))
        return outcome

    async def session(self) -> _Session:
        found: _Session = await self._once("session", self._session)
        return found

    def _conninfo(self, dbname: str) -> dict[str, Any]:
        spec = self.spec
        args: dict[str, Any] = {
            "host": spec.host, "port": spec.port, "dbname": dbname, "user": spec.user,
            "password": spec.password, "sslmode": spec.sslmode,
            # libpq counts whole seconds and treats anything under 2 as 2; asyncio.timeout bounds it exactly.
            "connect_timeout": max(2, math.ceil(spec.timeout_s)),
            "application_name": "hfwizard-preflight",
        }
        if spec.sslrootcert:
            args["sslrootcert"] = spec.sslrootcert
        elif spec.sslmode in ("verify-ca", "verify-full"):
            args["sslrootcert"] = "system"  # libpq 16+: the system's CAs, as the TLS check used
        return args

    def _classify(self, exc: BaseException) -> tuple[_Failure, str]:
        if isinstance(exc, TimeoutError):
            return (_Failure.TIMEOUT, f"no answer from {self.spec.endpoint} within {self.spec.timeout_s:g} s")
        text = self.scrub(str(exc))
        low = text.lower()
        if "password authentication failed" in low or "authentication failed" in low:
            return (_Failure.AUTH, text)
        if "no pg_hba.conf entry" in low:
            return (_Failure.HBA, text)
        if re.search(r'database "[^"]*" does not exist', low):
            return (_Failure.DB_MISSING, text)
        if "permission denied for database" in low:
            return (_Failure.DB_DENIED, text)
        if "timeout expired" in low:
            return (_Failure.TIMEOUT, text)
        if "ssl" in low or "certificate" in low or "tls" in low:
            return (_Failure.TLS, text)
        return (_Failure.OTHER, text)

    async def _connect(self, dbname: str) -> Any:
        await imported("psycopg")  # here, and in a thread: --help must not pay for it, nor the loop wait
        import psycopg

        async with asyncio.timeout(self.spec.timeout_s):
            return await psycopg.AsyncConnection.connect(**self._conninfo(dbname), autocommit=True)

    async def _session(self) -> _Session:
        await imported("psycopg")
        import psycopg

        found = _Session()
        conn = None
        tried: list[str] = []
        for dbname in (self.spec.database, *_FALLBACK_DATABASES):
            if dbname in tried:
                continue
            tried.append(dbname)
            try:
                conn = await self._connect(dbname)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                kind, text = self._classify(exc)
                log.debug("postgres session to %s/%s failed: %s", self.spec.endpoint, dbname, kind)
                if dbname == self.spec.database:
                    found.target_error = text
                    if kind is _Failure.DB_MISSING:
                        found.db_exists = False
                if kind in (_Failure.DB_MISSING, _Failure.DB_DENIED):
                    found.authenticated = True  # the server checks the database only after the password
                    found.failure = found.failure or kind
                    found.error = found.error or text
                    continue
                found.failure, found.error = kind, text
                return found
            found.connected_to = dbname
            break
        if conn is None:
            return found
        found.authenticated = True
        try:
            async with conn:
                await self._inspect(conn, found)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            found.failure, found.error = self._classify(exc)
        return found

    async def _inspect(self, conn: Any, found: _Session) -> None:
        async with asyncio.timeout(self.spec.timeout_s):
            cur = await conn.execute(
                "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
                " r.rolsuper, r.rolcreatedb FROM pg_roles r WHERE r.rolname = current_user")
            row = await cur.fetchone()
            if row:
                found.version_text, found.version_num, found.superuser, found.createdb = row
            cur = await conn.execute(
                "SELECT pg_get_userbyid(d.datdba), has_database_privilege(d.datname, 'CONNECT'),"
                " has_database_privilege(d.datname, 'CREATE') FROM pg_database d WHERE d.datname = %s",
                (self.spec.database,))
            row = await cur.fetchone()
            found.db_exists = row is not None
            if row:
                found.db_owner, found.db_connect, found.db_create = row
            if found.connected_to == self.spec.database:
                cur = await conn.execute(
                    "SELECT CASE WHEN to_regnamespace('public') IS NULL THEN NULL"
                    " ELSE has_schema_privilege('public', 'CREATE') END")
                row = await cur.fetchone()
                found.public_create = row[0] if row else None


async def _ssl_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str | None:
    writer.write(_SSL_REQUEST)
    await writer.drain()
    answer = await reader.readexactly(1)
    if answer == b"S":
        return None
    if answer == b"N":
        return "the server does not accept TLS connections (ssl = off on the server)"
    return f"unexpected answer to PostgreSQL's TLS request: {answer!r}"


# ---------------------------------------------------------------- the checks

_TLS_REMEDY = {
    net.TlsFailure.NAME_MISMATCH: "Connect with a host name the server certificate carries, or reissue the"
                                  " certificate to include {host}.",
    net.TlsFailure.UNTRUSTED: "Set sslrootcert to the CA bundle that signed the server certificate"
                              " (RDS: the AWS global bundle; Cloud SQL: the instance's server CA).",
    net.TlsFailure.EXPIRED: "Renew the server certificate.",
    net.TlsFailure.NOT_YET_VALID: "Check the clocks of this machine and the server; the certificate is"
                                  " not valid yet.",
    net.TlsFailure.NOT_OFFERED: "Turn TLS on at the server (ssl = on), or, if this network is trusted,"
                                " lower sslmode (not recommended).",
    net.TlsFailure.TIMEOUT: "The server accepted TCP but did not finish the TLS handshake: check for a"
                            " proxy or load balancer in between and that this is a PostgreSQL port.",
    net.TlsFailure.CA_FILE: "Fix the sslrootcert path: the file must exist and hold PEM certificates.",
}

_TCP_REMEDY = {
    net.TcpFailure.DNS: "Check the host name: it does not resolve from this machine (VPN, private DNS"
                        " zone?).",
    net.TcpFailure.REFUSED: "Nothing listens there: check the port and that the server is running.",
    net.TcpFailure.TIMEOUT: "Packets are dropped: check security groups / firewall rules / authorized"
                            " networks for this machine's address, and the VPN.",
    net.TcpFailure.UNREACHABLE: "No route to the server: check the VPN or network peering.",
}


_CheckFn = Callable[[_PostgresProbe, str, str, float], Awaitable[CheckResult]]


def postgres_checks(spec: PostgresSpec, *, prefix: str = "postgres") -> list[Check]:
    """The PostgreSQL checks for `spec`; they share one probe, so each step runs once."""
    probe = _PostgresProbe(spec)
    t = spec.timeout_s
    steps: list[tuple[str, str, _CheckFn, float]] = [
        ("reachable", "PostgreSQL reachable", _check_reachable, t + 2),
        ("tls", "PostgreSQL TLS", _check_tls, 2 * t + 2),
        ("auth", "PostgreSQL authentication", _check_auth, 3 * t + 2),
        ("version", "PostgreSQL version", _check_version, 5 * t + 2),
        ("database", "PostgreSQL database", _check_database, 5 * t + 2),
    ]
    if spec.databases or spec.databases_from is not None:
        steps.append(("create-database", "The services' databases exist or can be created",
                      _check_create_database, 6 * t + 2))
    return [Check(f"{prefix}/{name}", title, guarded(probe, fn, f"{prefix}/{name}", title), timeout)
            for name, title, fn, timeout in steps]


def _details(spec: PostgresSpec, **more: Any) -> dict[str, Any]:
    return {"host": spec.host, "port": spec.port, "user": spec.user, "database": spec.database,
            "sslmode": spec.sslmode, **more}


async def _check_reachable(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    tcp = await probe.tcp()
    if tcp.ok:
        return result(cid, title, Status.PASS, f"TCP connection to {spec.endpoint} opened", None, started,
                      **_details(spec, address=tcp.address))
    return result(cid, title, Status.FAIL, f"PostgreSQL at {spec.endpoint} unreachable: {tcp.detail}",
                  _TCP_REMEDY.get(tcp.failure or net.TcpFailure.ERROR, "Check the host, port and network."),
                  started, **_details(spec, failure=str(tcp.failure)))


async def _not_reached(probe: _PostgresProbe, cid: str, title: str, started: float,
                       need_tls: bool) -> CheckResult | None:
    """A SKIPPED result when an earlier step failed, so one fault is reported once."""
    spec = probe.spec
    tcp = await probe.tcp()
    if not tcp.ok:
        return result(cid, title, Status.SKIPPED, f"not reached: {spec.endpoint} is unreachable", None,
                      started, **_details(spec))
    if need_tls and spec.sslmode in ("require", "verify-ca", "verify-full"):
        tls = await probe.tls()
        if tls is not None and not tls.ok:
            return result(cid, title, Status.SKIPPED, f"not reached: TLS with {spec.endpoint} failed"
                          f" (sslmode={spec.sslmode})", None, started, **_details(spec))
    return None


async def _check_tls(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    if spec.sslmode not in SSLMODES:
        return result(cid, title, Status.FAIL, f"unknown sslmode {spec.sslmode!r}",
                      f"Use one of: {', '.join(SSLMODES)} (verify-full is recommended).", started)
    if spec.sslmode == "disable":
        return result(cid, title, Status.WARN,
                      "TLS is off (sslmode=disable): queries and data cross the network unencrypted",
                      "Use sslmode=verify-full with sslrootcert set to the server's CA.", started,
                      **_details(spec))
    skipped = await _not_reached(probe, cid, title, started, need_tls=False)
    if skipped:
        return skipped
    tls = await probe.tls()
    assert tls is not None
    extra = _details(spec, tls_failure=str(tls.failure) if tls.failure else None, protocol=tls.protocol)
    if tls.ok:
        how = "certificate and host name verified" if spec.sslmode == "verify-full" else (
            "certificate chain verified, host name not checked" if tls.verified
            else f"certificate not verified (sslmode={spec.sslmode})")
        return result(cid, title, Status.PASS, f"{tls.protocol} with {spec.endpoint}: {how}", None, started,
                      **extra)
    if spec.sslmode in ("allow", "prefer") and tls.failure is net.TlsFailure.NOT_OFFERED:
        return result(cid, title, Status.WARN,
                      f"{spec.endpoint} does not offer TLS: sslmode={spec.sslmode} falls back to an"
                      " unencrypted connection", "Turn TLS on at the server and use sslmode=verify-full.",
                      started, **extra)
    status = Status.FAIL if spec.sslmode in ("require", "verify-ca", "verify-full") else Status.WARN
    remedy = _TLS_REMEDY.get(tls.failure or net.TlsFailure.ERROR,
                             "Check the server's TLS settings and the sslmode/sslrootcert in the profile.")
    return result(cid, title, status, f"TLS with {spec.endpoint} failed: {tls.detail}",
                  remedy.format(host=spec.host), started, **extra)


async def _check_auth(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    skipped = await _not_reached(probe, cid, title, started, need_tls=True)
    if skipped:
        return skipped
    s = await probe.session()
    if s.authenticated:
        return result(cid, title, Status.PASS, f"user {spec.user} authenticated", None, started,
                      **_details(spec))
    if s.failure is _Failure.AUTH:
        return result(cid, title, Status.FAIL, f"authentication failed for user {spec.user}",
                      f"Check the password reference for user {spec.user} and that the role exists with"
                      " LOGIN (the server does not say which of the two is wrong).", started,
                      **_details(spec, error=s.error))
    if s.failure is _Failure.HBA:
        return result(cid, title, Status.FAIL,
                      f"the server refuses user {spec.user} from this host: {s.error}",
                      "Add a pg_hba.conf line (hostssl ... scram-sha-256) for this user and network, or"
                      " connect with TLS if only hostssl lines exist.", started, **_details(spec))
    if s.failure is _Failure.TIMEOUT:
        return result(cid, title, Status.FAIL, f"timed out during login to {spec.endpoint}: {s.error}",
                      "The server accepted TCP but did not complete the login: check for a proxy in"
                      " between and the server's load.", started, **_details(spec))
    return result(cid, title, Status.FAIL, f"could not log in as {spec.user}: {s.error}",
                  "Check the server's log for this connection attempt.", started,
                  **_details(spec, failure=str(s.failure)))


async def _session_or_skip(probe: _PostgresProbe, cid: str, title: str,
                           started: float) -> tuple[_Session | None, CheckResult | None]:
    skipped = await _not_reached(probe, cid, title, started, need_tls=True)
    if skipped:
        return (None, skipped)
    s = await probe.session()
    if not s.authenticated:
        return (None, result(cid, title, Status.SKIPPED,
                             f"not reached: could not log in as {probe.spec.user}", None, started,
                             **_details(probe.spec)))
    return (s, None)


async def _check_version(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    assert s is not None
    if s.version_num is None:
        return result(cid, title, Status.SKIPPED,
                      f"could not read server_version: no session could be opened ({s.error})",
                      f"Let user {spec.user} connect to database {spec.database} or postgres.", started,
                      **_details(spec))
    found = version_from_num(s.version_num)
    shown = (s.version_text or "").split(" ")[0] or ".".join(map(str, found))
    want = parse_version(spec.min_version)
    extra = _details(spec, server_version=s.version_text, server_version_num=s.version_num)
    if found >= want:
        return result(cid, title, Status.PASS, f"PostgreSQL {shown} ({spec.min_version} or newer required)",
                      None, started, **extra)
    return result(cid, title, Status.FAIL, f"PostgreSQL {shown} found, {spec.min_version} or newer required",
                  f"Upgrade the server to PostgreSQL {spec.min_version} or newer (managed services: a major"
                  " version upgrade), or point the profile at a server that runs it.", started, **extra)


async def _check_database(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    assert s is not None
    db, user = spec.database, spec.user
    extra = _details(spec, owner=s.db_owner, createdb=s.createdb, superuser=s.superuser)
    if s.db_exists is False or (s.db_exists is None and s.failure is _Failure.DB_MISSING):
        if s.connected_to is None:
            return result(cid, title, Status.FAIL,
                          f"database {db} does not exist, and user {user} may open no other database to"
                          " create it", f"Create it: CREATE DATABASE {db} OWNER {user};", started, **extra)
        if s.createdb or s.superuser:
            why = "superuser" if s.superuser else "CREATEDB"
            return result(cid, title, Status.PASS,
                          f"database {db} does not exist yet; user {user} may create it ({why})", None,
                          started, **extra)
        return result(cid, title, Status.FAIL,
                      f"database {db} does not exist and user {user} cannot create it (no CREATEDB)",
                      f"Create it: CREATE DATABASE {db} OWNER {user}; or allow it: ALTER ROLE {user}"
                      " CREATEDB;", started, **extra)
    if s.connected_to != db:
        return result(cid, title, Status.FAIL, f"database {db} exists but user {user} cannot connect to it:"
                      f" {s.target_error}", f"GRANT CONNECT ON DATABASE {db} TO {user};", started, **extra)
    owner = s.db_owner == user
    if owner or s.superuser or s.db_create or s.public_create:
        how = ("owner" if owner else "superuser" if s.superuser
               else "CREATE on the database" if s.db_create else "CREATE on schema public")
        return result(cid, title, Status.PASS, f"database {db} exists; user {user} may create objects in it"
                      f" ({how})", None, started, **extra)
    return result(cid, title, Status.WARN,
                  f"database {db} exists (owner {s.db_owner}) but user {user} can create neither schemas nor"
                  " tables in it (since PostgreSQL 15 schema public is no longer writable by everyone)",
                  f"ALTER DATABASE {db} OWNER TO {user}; or GRANT CREATE ON DATABASE {db} TO {user};",
                  started, **extra)


async def _check_create_database(probe: _PostgresProbe, cid: str, title: str, started: float) -> CheckResult:
    """The services' own databases: there already, or creatable by the install's user (never changed here)."""
    from hfwizard.platform.databases import DatabaseError, database_access

    spec = probe.spec
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    assert s is not None
    wanted = spec.databases or (await in_thread(spec.databases_from) if spec.databases_from else ())
    if not wanted:
        return result(cid, title, Status.SKIPPED, "not checked: the platform catalog cannot plan this profile's "
                      "services yet (see platform/inputs)", None, started)
    conninfo = probe._conninfo(s.connected_to or spec.database)
    try:
        access = await in_thread(database_access, conninfo, list(wanted))
    except DatabaseError as exc:
        return result(cid, title, Status.FAIL, probe.scrub(exc.message), "Check the server's log for this "
                      "connection attempt.", started, **_details(spec))
    extra = _details(spec, missing=", ".join(access.missing), existing=", ".join(access.existing))
    if not access.ok:
        return result(cid, title, Status.FAIL, access.finding,
                      f"ALTER ROLE {access.user} CREATEDB; or create the databases listed, owned by {access.user}",
                      started, **extra)
    if access.foreign:
        return result(cid, title, Status.WARN, access.finding,
                      "ALTER DATABASE NAME OWNER TO " + access.user + " for each database listed", started, **extra)
    return result(cid, title, Status.PASS, access.finding, None, started, **extra)
