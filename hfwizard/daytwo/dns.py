"""The DNS hand-off: which records to create for the platform's hosts, and whether they resolve there yet."""

# After an install the operator points each host (control., api., gateway., auth., discovery., studio.
# under the install's domain) at the ingress load balancer: a CNAME when the load balancer has a name,
# A/AAAA records when it has addresses. `check_records` asks DNS (the machine's resolver, or the
# nameservers given) what each host resolves to now, and says per record: resolves there, resolves
# elsewhere (and what it got), does not resolve, or could not be checked.

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hfwizard.errors import BadInput

if TYPE_CHECKING:
    import dns.resolver

# dnspython (about 0.1 s to import) is imported where DNS is asked: `hfwizard status --no-dns` and the
# records' lines never ask.

PREFIXES = ("control", "api", "gateway", "auth", "discovery", "studio")
DEFAULT_TIMEOUT = 5.0


class Resolution(StrEnum):
    OK = "ok"                 # resolves to the load balancer
    ELSEWHERE = "elsewhere"   # resolves, to something else
    MISSING = "missing"       # no such name, or no address for it
    UNKNOWN = "unknown"       # DNS did not answer (timeout, SERVFAIL, no resolver configured)


@dataclass(frozen=True)
class DnsRecord:
    """One record the operator creates: `host` CNAME/A/AAAA `value`."""

    host: str
    type: str  # CNAME, A or AAAA
    value: str

    @property
    def line(self) -> str:
        """The record as a zone file line, fully qualified."""
        target = f"{self.value}." if self.type == "CNAME" else self.value
        return f"{self.host}.  {self.type}  {target}"


@dataclass(frozen=True)
class RecordCheck:
    """What DNS says about one record now."""

    record: DnsRecord
    status: Resolution
    found: tuple[str, ...]  # CNAME targets then addresses the host resolved to
    detail: str

    @property
    def line(self) -> str:
        rec = self.record
        want = f"{rec.type} {rec.value}"
        match self.status:
            case Resolution.OK:
                return f"ok         {rec.host} -> {rec.value} ({rec.type}): resolves there {self.detail}".rstrip()
            case Resolution.ELSEWHERE:
                return (f"elsewhere  {rec.host}: resolves to {', '.join(self.found)}, not {rec.value}: "
                        f"change it to {want}")
            case Resolution.MISSING:
                return f"missing    {rec.host}: does not resolve ({self.detail}): create {want}"
        return f"unknown    {rec.host}: could not check ({self.detail})"


def platform_hosts(domain: str, prefixes: Iterable[str] = PREFIXES) -> list[str]:
    """The hosts the platform answers on: one per prefix under `domain`."""
    domain = _hostname(domain, "domain")
    return [f"{prefix}.{domain}" for prefix in prefixes]


def dns_records(hosts: Iterable[str], lb: str | Sequence[str]) -> list[DnsRecord]:
    """The records to create: each host CNAME the load balancer's name, or A/AAAA each of its addresses."""
    targets = [lb] if isinstance(lb, str) else list(lb)
    if not targets:
        raise BadInput("the load balancer has neither a name nor an address yet",
                       remedy="wait until the ingress shows an address (`kubectl get ingress`), then run again")
    addresses = [_address(t) for t in targets]
    names = [t for t, a in zip(targets, addresses, strict=True) if a is None]
    if names and len(targets) > 1:
        raise BadInput(f"the load balancer is given as {', '.join(targets)}: one hostname, or addresses only",
                       remedy="give the load balancer's DNS name alone, or its IP addresses")
    out: list[DnsRecord] = []
    for host in hosts:
        host = _hostname(host, "host")
        if names:
            out.append(DnsRecord(host, "CNAME", _hostname(names[0], "load balancer")))
            continue
        for address in addresses:
            assert address is not None
            out.append(DnsRecord(host, "A" if address.version == 4 else "AAAA", str(address)))
    return out


def lb_from_ingress(ingress: Mapping[str, Any]) -> list[str]:
    """The load balancer's hostnames and addresses from an Ingress (or Service) object's status."""
    status = ingress.get("status") or {}
    entries = (status.get("loadBalancer") or {}).get("ingress") or []
    names = [str(e["hostname"]) for e in entries if e.get("hostname")]
    return names[:1] if names else [str(e["ip"]) for e in entries if e.get("ip")]


def load_balancer(api_client: Any, namespace: str, *, request_timeout: float = 10.0) -> list[str]:
    """The load balancer in front of the install's Ingresses (through a `kubernetes.client.ApiClient`):
    the first Ingress in `namespace` whose status has one. Empty while the cloud is still making it."""
    from kubernetes import client

    listing = client.NetworkingV1Api(api_client).list_namespaced_ingress(namespace, _request_timeout=request_timeout)
    for ingress in sorted(api_client.sanitize_for_serialization(listing).get("items") or [],
                          key=lambda i: i["metadata"]["name"]):
        found = lb_from_ingress(ingress)
        if found:
            return found
    return []


def handoff_lines(records: Sequence[DnsRecord], checks: Sequence[RecordCheck] | None = None) -> list[str]:
    """What to print after an install (and in `status`): the records to create, then, when checked,
    a line per record and how many resolve to the load balancer."""
    lines = ["DNS records to create (at your DNS provider):", *(f"  {r.line}" for r in records)]
    if checks is not None:
        ok = sum(c.status is Resolution.OK for c in checks)
        lines += ["DNS now:", *(f"  {c.line}" for c in checks),
                  f"{ok} of {len(checks)} records resolve to the load balancer"
                  + ("" if ok == len(checks) else " (DNS changes can take a while to be seen)")]
    return lines


def check_records(records: Sequence[DnsRecord], nameservers: Sequence[str | tuple[str, int]] | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> list[RecordCheck]:
    """Ask DNS about each record, hosts side by side; `nameservers` ("IP", "IP:PORT", "[IPv6]:PORT" or
    (IP, PORT)) replaces the machine's resolver configuration. Each host gets `timeout` seconds."""
    import dns.resolver

    try:
        resolver = _resolver(nameservers, timeout)
    except dns.resolver.NoResolverConfiguration:
        return [RecordCheck(r, Resolution.UNKNOWN, (), "this machine has no DNS resolver configured")
                for r in records]
    hosts = list(dict.fromkeys(r.host for r in records))
    lb_names = {r.value for r in records if r.type == "CNAME"}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts) + len(lb_names)))) as pool:
        lookups = dict(zip(hosts, pool.map(lambda h: _lookup(resolver, h, timeout), hosts), strict=True))
        lb_lookups = dict(zip(lb_names, pool.map(lambda h: _lookup(resolver, h, timeout), lb_names), strict=True))
    return [_judge(r, lookups[r.host], lb_lookups.get(r.value)) for r in records]


@dataclass
class _Lookup:
    chain: list[str]       # CNAME targets, in order
    addresses: list[str]
    missing: str = ""      # why the name does not resolve, when it does not
    error: str = ""        # why DNS could not say


def _resolver(nameservers: Sequence[str | tuple[str, int]] | None, timeout: float) -> dns.resolver.Resolver:
    import dns.nameserver
    import dns.resolver

    if nameservers is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*_nameserver(ns)) for ns in nameservers]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver


def _nameserver(spec: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(spec, tuple):
        host, port = spec
    elif spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    else:
        host, port = spec, 53
    if _address(host) is None:
        raise BadInput(f"nameserver {spec!r} is not an IP address (optionally with :PORT)")
    return host, port


def _lookup(resolver: dns.resolver.Resolver, host: str, timeout: float) -> _Lookup:
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    deadline = time.monotonic() + timeout
    out = _Lookup([], [])
    try:
        for rdtype in ("CNAME", "A", "AAAA"):
            remaining = max(0.05, deadline - time.monotonic())
            answer = resolver.resolve(host, rdtype, raise_on_no_answer=False, search=False, lifetime=remaining)
            for rrset in answer.response.answer:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    out.chain.extend(_bare(str(rd.target)) for rd in rrset if _bare(str(rd.target)) not in out.chain)
                elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    out.addresses.extend(str(rd.address) for rd in rrset if str(rd.address) not in out.addresses)
    except dns.resolver.NXDOMAIN:
        if not out.chain and not out.addresses:
            out.missing = "no such name"
    except dns.exception.Timeout:
        out.error = f"no answer from DNS within {timeout:g} s"
    except dns.resolver.NoNameservers as exc:
        out.error = f"no nameserver gave an answer ({_first_line(exc)})"
    except dns.exception.DNSException as exc:
        out.error = _first_line(exc)
    if not out.missing and not out.error and not out.chain and not out.addresses:
        out.missing = "no CNAME, A or AAAA record"
    return out


def _judge(record: DnsRecord, got: _Lookup, lb: _Lookup | None) -> RecordCheck:
    found = tuple(got.chain + got.addresses)
    if got.error:
        return RecordCheck(record, Resolution.UNKNOWN, found, got.error)
    if record.type == "CNAME":
        if _bare(record.value) in got.chain:
            return RecordCheck(record, Resolution.OK, found, "")
        shared = set(got.addresses) & set(lb.addresses if lb else ())
        if shared:
            return RecordCheck(record, Resolution.OK, found,
                               f"(same addresses as the load balancer: {', '.join(sorted(shared))})")
    elif any(_same_address(a, record.value) for a in got.addresses):
        return RecordCheck(record, Resolution.OK, found, "")
    if found:
        return RecordCheck(record, Resolution.ELSEWHERE, found, "")
    return RecordCheck(record, Resolution.MISSING, found, got.missing)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _same_address(a: str, b: str) -> bool:
    x, y = _address(a), _address(b)
    return x is not None and x == y


def _hostname(text: str, what: str) -> str:
    name = _bare(text.strip())
    labels = name.split(".")
    if (not name or len(name) > 253 or len(labels) < 2
            or not all(0 < len(label) < 64 and label.replace("-", "").isalnum() and label.isascii()
                       and not label.startswith("-") and not label.endswith("-") for label in labels)):
        raise BadInput(f"{what} {text!r} is not a DNS name like example.com",
                       remedy="use letters, digits and hyphens in dot-separated labels")
    return name


def _bare(name: str) -> str:
    return name.rstrip(".").lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
