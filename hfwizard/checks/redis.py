"""Redis preflight checks: reach, TLS, auth, version 7.1+, cluster mode and state, memory of every primary."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfwizard import requirements
from hfwizard.checks import net
from hfwizard.checks.base import Check, CheckResult, Status, guarded, result
from hfwizard.checks.threads import imported

GIB = 1024**3
CLUSTER_SLOTS = 16384


@dataclass(frozen=True)
class RedisSpec:
    """Where and how to reach the platform's Redis cluster. `password` is the resolved secret: never shown."""

    endpoints: Sequence[str]  # seed nodes, "host:port" ("[v6]:port"; the port defaults to 6379)
    tls: bool = True
    ca_file: str | None = None  # CA bundle; None = the system's trusted CAs
    username: str | None = None  # None = the default user (AUTH <password>)
    password: str = field(default="", repr=False)
    min_version: str = requirements.REDIS.text
    min_memory_bytes: int = requirements.REDIS_MEMORY_GIB_MIN * GIB
    timeout_s: float = 10.0


def parse_endpoint(text: str, default_port: int = 6379) -> tuple[str, int]:
    """"host:port" / "[::1]:6379" / "host" -> (host, port). Raises ValueError on a bad port."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return (host, int(rest[1:]) if rest.startswith(":") else default_port)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return (host, int(port))
    return (text, default_port)


def fmt_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_version(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text or "")
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def server_identity(info: dict[str, str]) -> tuple[str, str]:
    """("Redis" | "Valkey", version) from INFO server. Valkey keeps `redis_version` at 7.2.4 for
    compatibility and reports its own in `valkey_version` (and `server_name:valkey`)."""
    if info.get("server_name", "").lower() == "valkey" or "valkey_version" in info:
        return ("Valkey", info.get("valkey_version") or info.get("redis_version", ""))
    return ("Redis", info.get("redis_version", ""))


def version_ok(product: str, version: str, minimum: str) -> bool:
    """Redis at `minimum` or newer; every Valkey release (7.2 onwards) speaks Redis 7.2's protocol."""
    found = parse_version(version)
    if product == "Valkey":
        return found >= (7, 2)
    return found >= parse_version(minimum)


def parse_info(raw: Any) -> dict[str, str]:
    """INFO / CLUSTER INFO as flat str -> str, whether the client parsed it already or not."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items() if not isinstance(v, dict)}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class ClusterNode:
    """One line of CLUSTER NODES."""

    node_id: str
    host: str
    port: int
    hostname: str | None
    flags: frozenset[str]
    slots: int

    @property
    def primary(self) -> bool:
        return "master" in self.flags

    @property
    def endpoint(self) -> str:
        return fmt_endpoint(self.hostname or self.host, self.port)


def parse_cluster_nodes(raw: Any) -> list[ClusterNode]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address, _, hostname = parts[1].partition(",")
        hostport = address.split("@", 1)[0]
        host, _, port = hostport.rpartition(":")
        slots = 0
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated or imported
            lo, _, hi = item.partition("-")
            slots += int(hi or lo) - int(lo) + 1
        nodes.append(ClusterNode(parts[0], host, int(port or 0), hostname or None,
                                 frozenset(parts[2].split(",")), slots))
    return nodes


@dataclass
class _NodeReport:
    """What one node told us, or why it could not."""

    endpoint: str
    error: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    cluster_info: dict[str, str] = field(default_factory=dict)


@dataclass
class _SeedSession:
    seed: str | None = None  # the endpoint the session was opened on
    auth: str = "ok"  # ok | failed | required | no_password_set | not_reached | error
    error: str = ""
    info: dict[str, str] = field(default_factory=dict)
    cluster_nodes: list[ClusterNode] = field(default_factory=list)
    cluster_error: str = ""


class _RedisProbe:
    """Runs each network step once, however many checks ask, and keeps what it learnt."""

    def __init__(self, spec: RedisSpec) -> None:
        self.spec = spec
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.seeds: list[tuple[str, int]] = []
        self.bad_seeds: list[str] = []
        for text in spec.endpoints:
            try:
                self.seeds.append(parse_endpoint(text))
            except ValueError:
                self.bad_seeds.append(text)

    def _once(self, name: str, make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        task = self._tasks.get(name)
        if task is None:
            task = asyncio.ensure_future(make())
            self._tasks[name] = task
        return asyncio.shield(task)  # one check's timeout must not cancel work the others share

    def scrub(self, text: str) -> str:
        text = " ".join(str(text).split())
        return text.replace(self.spec.password, "***") if self.spec.password else text

    # -- steps

    async def reach(self) -> list[tuple[net.TcpOutcome, net.TlsOutcome | None]]:
        out: list[tuple[net.TcpOutcome, net.TlsOutcome | None]] = await self._once("reach", self._reach)
        return out

    async def _reach(self) -> list[tuple[net.TcpOutcome, net.TlsOutcome | None]]:
        async def one(host: str, port: int) -> tuple[net.TcpOutcome, net.TlsOutcome | None]:
            tcp = await net.tcp_connect(host, port, self.spec.timeout_s)
            if not tcp.ok or not self.spec.tls:
                return (tcp, None)
            return (tcp, await net.tls_handshake(host, port, timeout=self.spec.timeout_s,
                                                 ca_file=self.spec.ca_file))
        return list(await asyncio.gather(*(one(h, p) for h, p in self.seeds)))

    async def seed(self) -> _SeedSession:
        found: _SeedSession = await self._once("seed", self._seed)
        return found

    def _client(self, host: str, port: int, check_hostname: bool = True) -> Any:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        tls: dict[str, Any] = {}
        if self.spec.tls:
            tls = {"ssl": True, "ssl_cert_reqs": "required", "ssl_ca_certs": self.spec.ca_file,
                   "ssl_check_hostname": check_hostname}
        # No retries: a preflight check reports the first failure rather than hiding it behind backoff.
        return redis.asyncio.Redis(host=host, port=port, username=self.spec.username,
                                   password=self.spec.password or None, protocol=2, decode_responses=True,
                                   socket_connect_timeout=self.spec.timeout_s,
                                   socket_timeout=self.spec.timeout_s,
                                   retry=Retry(NoBackoff(), 0), client_name="hfwizard-preflight", **tls)

    async def _seed(self) -> _SeedSession:
        await imported("redis.asyncio")  # off the loop: the other checks' sockets keep moving
        import redis.exceptions as rex

        reached = await self.reach()
        usable = [(h, p) for (h, p), (tcp, tls) in zip(self.seeds, reached, strict=True)
                  if tcp.ok and (tls is None or tls.ok)]
        session = _SeedSession()
        if not usable:
            session.auth = "not_reached"
            return session
        host, port = usable[0]
        session.seed = fmt_endpoint(host, port)
        client = self._client(host, port)
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                session.info = parse_info(await client.execute_command("INFO"))
                if session.info.get("cluster_enabled") == "1":
                    try:
                        raw = await client.execute_command("CLUSTER", "NODES")
                        session.cluster_nodes = parse_cluster_nodes(raw)
                    except rex.ResponseError as exc:
                        session.cluster_error = self.scrub(str(exc))
        except rex.AuthenticationError as exc:
            text = str(exc).lower()
            if "without any password configured" in text:
                session.auth = "no_password_set"
            elif "authentication required" in text or "noauth" in text:
                session.auth = "required"
            else:
                session.auth = "failed"
            session.error = self.scrub(str(exc))
        except (rex.RedisError, OSError, TimeoutError) as exc:
            session.auth = "error"
            session.error = self.scrub(str(exc) or type(exc).__name__)
            if isinstance(exc, TimeoutError | rex.TimeoutError):
                session.error = f"no answer within {self.spec.timeout_s:g} s"
        finally:
            await client.aclose()
        return session

    async def primaries(self) -> list[_NodeReport]:
        """INFO (and CLUSTER INFO) from every primary the cluster reports; the seeds when not a cluster."""
        found: list[_NodeReport] = await self._once("primaries", self._primaries)
        return found

    async def _primaries(self) -> list[_NodeReport]:
        session = await self.seed()
        if session.auth != "ok":
            return []
        targets: list[tuple[str, int, bool]] = []
        if session.info.get("cluster_enabled") == "1" and session.cluster_nodes:
            for node in session.cluster_nodes:
                if not node.primary or "noaddr" in node.flags or "handshake" in node.flags:
                    continue
                if not node.host and "myself" in node.flags and session.seed:
                    targets.append((*parse_endpoint(session.seed), True))
                    continue
                # A node announced by IP only cannot be checked by name: verify its chain, not its name.
                targets.append((node.hostname or node.host, node.port, node.hostname is not None))
        else:
            targets = [(h, p, True) for h, p in self.seeds]
        cluster = session.info.get("cluster_enabled") == "1"
        return list(await asyncio.gather(*(self._node(h, p, by_name, cluster) for h, p, by_name in targets)))

    async def _node(self, host: str, port: int, by_name: bool, cluster: bool) -> _NodeReport:
        import redis.exceptions as rex

        report = _NodeReport(fmt_endpoint(host, port))
        client = self._client(host, port, check_hostname=by_name)
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                report.info = parse_info(await client.execute_command("INFO"))
                if cluster:
                    report.cluster_info = parse_info(await client.execute_command("CLUSTER", "INFO"))
        except TimeoutError:
            report.error = f"no answer within {self.spec.timeout_s:g} s"
        except (rex.RedisError, OSError) as exc:
            report.error = self.scrub(str(exc) or type(exc).__name__)
        finally:
            await client.aclose()
        return report


# ---------------------------------------------------------------- the checks

def redis_checks(spec: RedisSpec, *, prefix: str = "redis") -> list[Check]:
    """The Redis checks for `spec`; they share one probe, so each node is asked once."""
    probe = _RedisProbe(spec)
    t = spec.timeout_s
    steps: list[tuple[str, str, _CheckFn, float]] = [
        ("reachable", "Redis reachable", _check_reachable, 2 * t + 2),
        ("tls", "Redis TLS", _check_tls, 2 * t + 2),
        ("auth", "Redis authentication", _check_auth, 3 * t + 2),
        ("version", "Redis version", _check_version, 4 * t + 2),
        ("cluster-mode", "Redis cluster mode", _check_cluster_mode, 3 * t + 2),
        ("cluster-state", "Redis cluster state", _check_cluster_state, 4 * t + 2),
        ("memory", "Redis memory per primary", _check_memory, 4 * t + 2),
    ]
    return [Check(f"{prefix}/{name}", title, guarded(probe, fn, f"{prefix}/{name}", title), timeout)
            for name, title, fn, timeout in steps]


_CheckFn = Callable[["_RedisProbe", str, str, float], Awaitable[CheckResult]]


_TCP_REMEDY = {
    net.TcpFailure.DNS: "Check the endpoint's host name: it does not resolve from this machine (VPN, private"
                        " DNS zone?).",
    net.TcpFailure.REFUSED: "Nothing listens there: check the port and that the node is running.",
    net.TcpFailure.TIMEOUT: "Packets are dropped: check security groups / firewall rules for this machine's"
                            " address, and the VPN.",
    net.TcpFailure.UNREACHABLE: "No route to the node: check the VPN or network peering.",
}
_TLS_REMEDY = {
    net.TlsFailure.NAME_MISMATCH: "Use the endpoint name the certificate carries (for managed services, the"
                                  " configuration endpoint), or reissue the certificate.",
    net.TlsFailure.UNTRUSTED: "Set the Redis CA file to the CA that signed the node certificates.",
    net.TlsFailure.EXPIRED: "Renew the nodes' certificates.",
    net.TlsFailure.PROTOCOL: "The port does not speak TLS: turn in-transit encryption on, or set tls: false"
                             " if this network is trusted (not recommended).",
    net.TlsFailure.TIMEOUT: "The node accepted TCP but not the TLS handshake: is TLS on for this port?",
    net.TlsFailure.CA_FILE: "Fix the CA file path: it must exist and hold PEM certificates.",
}


def _endpoints(spec: RedisSpec) -> str:
    return ", ".join(spec.endpoints)


async def _check_reachable(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    if probe.bad_seeds or not probe.seeds:
        listed = ", ".join(probe.bad_seeds) or "(none)"
        return result(cid, title, Status.FAIL, f"not a host:port endpoint: {listed}",
                      "List the cluster's endpoints as host:port.", started)
    reached = await probe.reach()
    bad = [tcp for tcp, _ in reached if not tcp.ok]
    if not bad:
        return result(cid, title, Status.PASS, f"TCP connection opened to {_endpoints(spec)}", None, started,
                      endpoints=_endpoints(spec))
    text = "; ".join(tcp.detail for tcp in bad)
    remedy = _TCP_REMEDY.get(bad[0].failure or net.TcpFailure.ERROR, "Check the endpoints and the network.")
    if len(bad) < len(reached):
        return result(cid, title, Status.WARN, f"{len(bad)} of {len(reached)} endpoints unreachable: {text}",
                      remedy, started, endpoints=_endpoints(spec))
    return result(cid, title, Status.FAIL, f"Redis unreachable: {text}", remedy, started,
                  endpoints=_endpoints(spec), failure=str(bad[0].failure))


async def _check_tls(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    if not spec.tls:
        return result(cid, title, Status.WARN,
                      "TLS is off: the password and all data cross the network in clear text",
                      "Turn on in-transit encryption on the cluster and set tls: true (with its CA file).",
                      started)
    reached = await probe.reach()
    shaken = [tls for tcp, tls in reached if tcp.ok and tls is not None]
    if not shaken:
        return result(cid, title, Status.SKIPPED, "not reached: no endpoint accepted TCP", None, started)
    bad = [tls for tls in shaken if not tls.ok]
    if not bad:
        return result(cid, title, Status.PASS, f"{shaken[0].protocol} with {len(shaken)} endpoint(s), "
                      "certificate and host name verified", None, started, protocol=shaken[0].protocol)
    first = bad[0]
    return result(cid, title, Status.FAIL, "; ".join(t.detail for t in bad),
                  _TLS_REMEDY.get(first.failure or net.TlsFailure.ERROR, "Check the nodes' TLS settings."),
                  started, tls_failure=str(first.failure))


async def _session_or_skip(probe: _RedisProbe, cid: str, title: str,
                           started: float) -> tuple[_SeedSession, CheckResult | None]:
    s = await probe.seed()
    if s.auth == "not_reached":
        why = "no endpoint reachable" + (" over TLS" if probe.spec.tls else "")
        return (s, result(cid, title, Status.SKIPPED, f"not reached: {why}", None, started))
    if s.auth != "ok":
        return (s, result(cid, title, Status.SKIPPED, f"not reached: could not log in to {s.seed}", None,
                          started))
    return (s, None)


async def _check_auth(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    s = await probe.seed()
    who = spec.username or "default"
    if s.auth == "not_reached":
        why = "no endpoint reachable" + (" over TLS" if spec.tls else "")
        return result(cid, title, Status.SKIPPED, f"not reached: {why}", None, started)
    if s.auth == "ok":
        how = f"authenticated as user {who}" if spec.password else "no password needed"
        status = Status.PASS if spec.password else Status.WARN
        remedy = None if spec.password else "Require a password (AUTH token / ACL user) on the cluster."
        return result(cid, title, status, f"{s.seed}: {how}", remedy, started, user=who)
    if s.auth == "failed":
        return result(cid, title, Status.FAIL, f"authentication failed for user {who}",
                      f"Check the password reference for user {who} (and the ACL user name, if one is set).",
                      started, user=who, endpoint=s.seed)
    if s.auth == "required":
        return result(cid, title, Status.FAIL, f"{s.seed} requires a password and none is configured",
                      "Set the Redis password reference in the profile.", started, user=who)
    if s.auth == "no_password_set":
        return result(cid, title, Status.FAIL,
                      f"a password is configured but {s.seed} has none set for user {who}",
                      "Set requirepass / an AUTH token on the cluster, or check that this is the right"
                      " endpoint.", started, user=who)
    return result(cid, title, Status.FAIL, f"could not open a session on {s.seed}: {s.error}",
                  "Check that the endpoint is a Redis port and the TLS setting matches the server.", started)


def _unreached(reports: list[_NodeReport]) -> str:
    return "; ".join(f"{r.endpoint}: {r.error}" for r in reports if r.error)


async def _check_version(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    reports = [r for r in await probe.primaries() if not r.error] or [_NodeReport(s.seed or "", info=s.info)]
    seen = sorted({(parse_version(v), p, v, r.endpoint)
                   for r in reports for p, v in [server_identity(r.info)]})
    others = len({(p, v) for _, p, v, _ in seen}) > 1
    names = ", ".join(sorted({f"{p} {v}" for _, p, v, _ in seen}))
    extra: dict[str, Any] = {"versions": names, "nodes_checked": len(reports)}
    need = f"{spec.min_version} or newer required (Redis {spec.min_version}+, or Valkey 7.2+)"
    bad = [x for x in seen if not version_ok(x[1], x[2], spec.min_version)]
    if not bad:
        return result(cid, title, Status.PASS, f"{names} on {len(reports)} node(s) ({need})", None, started,
                      **extra)
    _, product, version, where = bad[0]
    on = f" on {where}" if others else ""
    return result(cid, title, Status.FAIL, f"{product} {version} found{on}, {need}",
                  f"Upgrade every node to Redis {spec.min_version} or newer, or Valkey 7.2+ (managed"
                  " services: "
                  "change the engine version).", started, **extra)


async def _check_cluster_mode(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    if s.info.get("cluster_enabled") == "1":
        return result(cid, title, Status.PASS, f"cluster mode enabled ({s.seed})", None, started)
    return result(cid, title, Status.FAIL, f"cluster mode is disabled on {s.seed}",
                  "Highflame needs Redis in cluster mode: create the cache with cluster mode enabled"
                  " (self-managed: cluster-enabled yes, then redis-cli --cluster create).", started)


async def _check_cluster_state(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    s, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    if s.info.get("cluster_enabled") != "1":
        return result(cid, title, Status.SKIPPED, "not a cluster: cluster mode is disabled", None, started)
    if s.cluster_error or not s.cluster_nodes:
        return result(cid, title, Status.FAIL,
                      f"CLUSTER NODES failed on {s.seed}: {s.cluster_error or 'empty'}",
                      "Check that the user may run CLUSTER commands (ACL +@slow / +cluster).", started)
    primaries = [n for n in s.cluster_nodes if n.primary]
    failed_flags = [n.endpoint for n in primaries if n.flags & {"fail", "fail?"}]
    reports = await probe.primaries()
    problems: list[str] = []
    if failed_flags:
        problems.append(f"primaries marked failing: {', '.join(failed_flags)}")
    unreached = _unreached(reports)
    if unreached:
        problems.append(f"primaries not reachable from here: {unreached}")
    # Nodes usually agree; group them so the finding stays one readable line.
    views: dict[tuple[str, str, str], list[str]] = {}
    for r in reports:
        ci = r.cluster_info
        if not r.error and ci.get("cluster_state") != "ok":
            key = (ci.get("cluster_state", "?"), ci.get("cluster_slots_assigned", "?"),
                   ci.get("cluster_slots_fail", "?"))
            views.setdefault(key, []).append(r.endpoint)
    for (state, assigned, failing), where in views.items():
        on = f"all {len(where)} primaries" if len(where) == len(reports) > 1 else ", ".join(where)
        problems.append(f"cluster_state:{state} on {on} (slots assigned {assigned}/{CLUSTER_SLOTS},"
                        f" failing {failing})")
    extra: dict[str, Any] = {"primaries": len(primaries), "nodes": len(s.cluster_nodes)}
    if not problems:
        return result(cid, title, Status.PASS,
                      f"cluster_state:ok on all {len(reports)} primaries, {CLUSTER_SLOTS}/{CLUSTER_SLOTS}"
                      " slots assigned", None, started, **extra)
    return result(cid, title, Status.FAIL, "; ".join(problems),
                  "Every slot must be served by a reachable primary: assign the uncovered slots"
                  " (redis-cli --cluster fix), bring failed nodes back, and check that every node the"
                  " cluster announces is reachable from this network.", started, **extra)


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


async def _check_memory(probe: _RedisProbe, cid: str, title: str, started: float) -> CheckResult:
    spec = probe.spec
    _, skipped = await _session_or_skip(probe, cid, title, started)
    if skipped:
        return skipped
    reports = await probe.primaries()
    need = spec.min_memory_bytes
    low: list[str] = []
    unbounded: list[str] = []
    fine: list[str] = []
    for r in reports:
        if r.error:
            continue
        maxmemory = int(r.info.get("maxmemory", "0") or 0)
        system = int(r.info.get("total_system_memory", "0") or 0)
        if maxmemory >= need:
            fine.append(f"{r.endpoint} {_gib(maxmemory)}")
        elif maxmemory > 0:
            low.append(f"{r.endpoint} maxmemory {_gib(maxmemory)}")
        elif system and system < need:
            low.append(f"{r.endpoint} no maxmemory, only {_gib(system)} of system memory")
        else:
            unbounded.append(f"{r.endpoint} ({_gib(system)} system memory)" if system else r.endpoint)
    unchecked = _unreached(reports)
    checked = sum(1 for r in reports if not r.error)
    extra: dict[str, Any] = {"required_bytes": need, "primaries_checked": checked}
    fix = (f"Set maxmemory to at least {need // GIB}gb on each primary, or choose a cache node type with at"
           f" least {need // GIB} GiB of memory for the data (managed services reserve part of it).")
    if low:
        return result(cid, title, Status.FAIL, f"below {_gib(need)} per primary: {'; '.join(low)}", fix,
                      started,
                      **extra)
    if unchecked and not (fine or unbounded):
        return result(cid, title, Status.SKIPPED, f"no primary could be asked: {unchecked}", None, started)
    if unbounded:
        # maxmemory 0 means "no limit": the node grows until the host (or its container limit, which
        # INFO cannot see) runs out, and then fails writes or is killed instead of evicting. Enough host
        # memory makes that workable, not guaranteed: warn, don't pass.
        return result(cid, title, Status.WARN,
                      f"no maxmemory set on {', '.join(unbounded)}: memory is not bounded",
                      f"Set maxmemory to at least {need // GIB}gb on each primary so its capacity is"
                      " explicit.",
                      started, **extra)
    if unchecked:
        return result(cid, title, Status.WARN, f"{', '.join(fine)}; could not ask: {unchecked}",
                      "Check that every primary is reachable from this network.", started, **extra)
    return result(cid, title, Status.PASS,
                  f"maxmemory at least {_gib(need)} on every primary: {', '.join(fine)}",
                  None, started, **extra)
