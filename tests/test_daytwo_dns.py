"""The DNS hand-off against a DNS server of the test's own on loopback (never the machine's resolver)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from hfwizard.daytwo.dns import (
    PREFIXES,
    DnsRecord,
    Resolution,
    check_records,
    dns_records,
    handoff_lines,
    lb_from_ingress,
    load_balancer,
    platform_hosts,
)
from hfwizard.errors import BadInput

LB = "k8s-ingress-0123456789.elb.eu-west-1.amazonaws.com"
LB_ADDRESSES = ["198.51.100.7", "198.51.100.8"]


class LoopbackDns:
    """A tiny authoritative DNS server on 127.0.0.1: `zone` maps a name to (type, value) records.
    A CNAME is followed inside the zone as a recursive resolver would; unknown names get NXDOMAIN;
    `silent` drops every query (a nameserver that never answers)."""

    def __init__(self, zone: dict[str, list[tuple[str, str]]], *, silent: bool = False) -> None:
        self.zone = {k.rstrip(".").lower(): v for k, v in zone.items()}
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            question = query.question[0]
            self.queries.append((str(question.name).rstrip("."), dns.rdatatype.to_text(question.rdtype)))
            if self.silent:
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        wanted = dns.rdatatype.to_text(question.rdtype)
        name = str(question.name).rstrip(".").lower()
        if name not in self.zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        for _hop in range(8):
            records = self.zone.get(name, [])
            cnames = [v for t, v in records if t == "CNAME"]
            if cnames and wanted != "CNAME":
                response.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "CNAME", cnames[0] + "."))
                name = cnames[0].rstrip(".").lower()
                continue
            values = [v for t, v in records if t == wanted]
            if values:
                response.answer.append(dns.rrset.from_text_list(name + ".", 60, "IN", wanted,
                                                                [v + "." if wanted == "CNAME" else v for v in values]))
            break
        return response

    def __enter__(self) -> LoopbackDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextmanager
def serving(zone: dict[str, list[tuple[str, str]]], **kw: bool) -> Iterator[str]:
    with LoopbackDns(zone, **kw) as server:
        yield f"127.0.0.1:{server.port}"


def test_records_for_a_named_and_an_addressed_load_balancer() -> None:
    hosts = platform_hosts("highflame.example.test")
    assert [h.split(".")[0] for h in hosts] == list(PREFIXES)
    named = dns_records(hosts, LB + ".")
    assert (named[0].host, named[0].type, named[0].value) == ("control.highflame.example.test", "CNAME", LB)
    assert len(named) == 6 and {r.type for r in named} == {"CNAME"}
    assert named[0].line == f"control.highflame.example.test.  CNAME  {LB}."
    addressed = dns_records(hosts[:1], ["198.51.100.7", "2001:db8::7"])
    assert [(r.type, r.value) for r in addressed] == [("A", "198.51.100.7"), ("AAAA", "2001:db8::7")]


def test_bad_names_are_refused_with_the_field_named() -> None:
    with pytest.raises(BadInput, match=r"host 'bad_host\.example\.test'"):
        dns_records(["bad_host.example.test"], LB)
    with pytest.raises(BadInput, match="neither a name nor an address"):
        dns_records(["api.example.test"], [])
    with pytest.raises(BadInput, match="one hostname, or addresses only"):
        dns_records(["api.example.test"], [LB, "198.51.100.7"])


def test_load_balancer_from_an_ingress_status() -> None:
    assert lb_from_ingress({"status": {"loadBalancer": {"ingress": [{"hostname": LB}]}}}) == [LB]
    assert lb_from_ingress({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}, {"ip": "2001:db8::7"}]}}}) \
        == ["198.51.100.7", "2001:db8::7"]
    assert lb_from_ingress({"status": {}}) == []


def test_each_record_resolves_there_elsewhere_or_not_at_all() -> None:
    hosts = platform_hosts("hf.example.test")
    zone = {
        LB: [("A", a) for a in LB_ADDRESSES],
        "control.hf.example.test": [("CNAME", LB)],
        # An ALIAS-style record: A records with the load balancer's addresses, no CNAME.
        "api.hf.example.test": [("A", LB_ADDRESSES[1])],
        "gateway.hf.example.test": [("CNAME", "old-lb.example.net")],
        "old-lb.example.net": [("A", "203.0.113.9")],
        "auth.hf.example.test": [("A", "203.0.113.10")],
        "discovery.hf.example.test": [("TXT", '"not an address"')],
        # studio.hf.example.test: not in the zone at all (NXDOMAIN)
    }
    with serving(zone) as ns:
        checks = check_records(dns_records(hosts, LB), nameservers=[ns], timeout=2)
    by_host = {c.record.host.split(".")[0]: c for c in checks}
    assert by_host["control"].status is Resolution.OK
    assert by_host["control"].found[0] == LB
    assert by_host["api"].status is Resolution.OK and "same addresses" in by_host["api"].line
    assert by_host["gateway"].status is Resolution.ELSEWHERE
    assert by_host["gateway"].found == ("old-lb.example.net", "203.0.113.9")
    assert "resolves to old-lb.example.net, 203.0.113.9" in by_host["gateway"].line
    assert f"change it to CNAME {LB}" in by_host["gateway"].line
    assert by_host["auth"].status is Resolution.ELSEWHERE and "203.0.113.10" in by_host["auth"].line
    assert by_host["discovery"].status is Resolution.MISSING
    assert "no CNAME, A or AAAA record" in by_host["discovery"].line
    assert by_host["studio"].status is Resolution.MISSING
    assert by_host["studio"].line == (f"missing    studio.hf.example.test: does not resolve (no such name): "
                                      f"create CNAME {LB}")


def test_address_records_compare_addresses() -> None:
    zone = {"api.hf.example.test": [("A", "198.51.100.7"), ("AAAA", "2001:db8::7")],
            "auth.hf.example.test": [("A", "198.51.100.99")]}
    records = dns_records(["api.hf.example.test", "auth.hf.example.test"], ["198.51.100.7", "2001:0db8::0007"])
    with serving(zone) as ns:
        checks = check_records(records, nameservers=[ns], timeout=2)
    assert [(c.record.host.split(".")[0], c.record.type, c.status) for c in checks] == [
        ("api", "A", Resolution.OK), ("api", "AAAA", Resolution.OK),
        ("auth", "A", Resolution.ELSEWHERE), ("auth", "AAAA", Resolution.ELSEWHERE)]


def test_a_nameserver_that_never_answers_is_reported_not_hung_on() -> None:
    records = dns_records(platform_hosts("hf.example.test"), LB)
    with LoopbackDns({}, silent=True) as server:
        started = time.monotonic()
        checks = check_records(records, nameservers=[("127.0.0.1", server.port)], timeout=0.5)
        elapsed = time.monotonic() - started
        assert server.queries, "the resolver asked the loopback server"
    assert {c.status for c in checks} == {Resolution.UNKNOWN}
    assert "no answer from DNS within 0.5 s" in checks[0].line
    assert elapsed < 3, "hosts are checked side by side, each within its timeout"


def test_nameserver_must_be_an_address() -> None:
    with pytest.raises(BadInput, match=r"nameserver 'dns\.example\.test'"):
        check_records([DnsRecord("api.hf.example.test", "A", "198.51.100.7")], nameservers=["dns.example.test"])


def test_handoff_lines_list_records_then_checks() -> None:
    records = dns_records(["api.hf.example.test", "auth.hf.example.test"], LB)
    zone = {"api.hf.example.test": [("CNAME", LB)], LB: [("A", LB_ADDRESSES[0])]}
    with serving(zone) as ns:
        checks = check_records(records, nameservers=[ns], timeout=2)
    lines = handoff_lines(records, checks)
    assert lines[:3] == ["DNS records to create (at your DNS provider):",
                         f"  api.hf.example.test.  CNAME  {LB}.", f"  auth.hf.example.test.  CNAME  {LB}."]
    assert lines[3] == "DNS now:" and lines[4].startswith("  ok         api.hf.example.test")
    assert lines[5].startswith("  missing    auth.hf.example.test")
    assert lines[6] == "1 of 2 records resolve to the load balancer (DNS changes can take a while to be seen)"
    assert handoff_lines(records) == lines[:3]


def test_load_balancer_read_from_the_install_ingress(cluster: Any, kubeconfig: Path) -> None:
    """Emulated API (kmock + our shim; no real API server here): the Ingress status the controller sets."""
    from kubernetes import client, config

    cluster.call(lambda c: c.add_namespace("highflame"))
    api = config.new_client_from_config(str(kubeconfig))
    networking = client.NetworkingV1Api(api)
    networking.create_namespaced_ingress("highflame", {
        "metadata": {"name": "platform"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "api.hf.example.test"}]}})
    assert load_balancer(api, "highflame") == []
    networking.patch_namespaced_ingress_status("platform", "highflame", {
        "status": {"loadBalancer": {"ingress": [{"hostname": LB}]}}})
    assert load_balancer(api, "highflame") == [LB]
