"""Outbound checks: DNS, TCP, TLS and an HTTP answer from the registry and Clerk, through HTTPS_PROXY."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.http import HttpOutcome, Proxy, Stage, http_get

DEFAULT_REGISTRY = "https://ghcr.io"

_REMEDY = {
    Stage.URL: "fix the URL in the profile",
    Stage.DNS: "check this machine's DNS (and the host name); behind a proxy, set HTTPS_PROXY",
    Stage.TCP: "allow outbound TCP to it in firewalls and security groups, or set HTTPS_PROXY",
    Stage.PROXY: "check HTTPS_PROXY (address, credentials) and NO_PROXY",
    Stage.TLS: "a TLS-inspecting proxy or firewall? add its CA to SSL_CERT_FILE here and to the nodes' trust",
    Stage.HTTP: "something between here and the host answers TCP but not HTTP: check the proxy or firewall",
}


@dataclass(frozen=True)
class Destination:
    """One outbound destination: where to GET, and which HTTP statuses mean it is alive (None: any)."""

    check_id: str
    title: str
    url: str
    alive: Callable[[int], bool] | None = None
    what: str = ""  # what a good answer shows, for the finding


def registry_destination(registry_url: str = DEFAULT_REGISTRY,
                         check_id: str = "outbound/registry") -> Destination:
    base = registry_url.rstrip("/")
    # The OCI distribution API answers GET /v2/ with 200, or 401 asking for a token: both mean alive.
    return Destination(check_id, "Image registry reachable", f"{base}/v2/", lambda s: s in (200, 401),
                       "registry API")


def clerk_frontend_destination(host: str, check_id: str = "outbound/clerk-frontend") -> Destination:
    return Destination(check_id, "Clerk frontend API reachable", f"https://{host}/.well-known/jwks.json")


def clerk_api_destination(api_url: str, check_id: str = "outbound/clerk-api") -> Destination:
    return Destination(check_id, "Clerk backend API reachable", f"{_api_base(api_url)}/v1/jwks")


def _api_base(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/v1")


async def check_destination(dest: Destination, *, timeout: float, ca_file: str | None = None,
                            proxy: Proxy | bool | None = True) -> CheckResult:
    """GET the destination and judge the answer. Checked from this machine: the cluster's nodes need
    the same egress, which only the install's pods can prove."""
    started = time.monotonic()
    got = await http_get(dest.url, timeout=timeout, ca_file=ca_file, proxy=proxy)
    return judge(dest, got, started)


def judge(dest: Destination, got: HttpOutcome, started: float) -> CheckResult:
    via = f" through proxy {got.proxy}" if got.proxy else ""
    details: dict[str, str | int | float | bool | None] = {"url": dest.url, "proxy": got.proxy}
    if not got.ok:
        assert got.stage is not None
        return result(dest.check_id, dest.title, Status.FAIL, f"{got.detail}{via} ({got.stage.value})",
                      _REMEDY[got.stage], started, stage=got.stage.value, **details)
    assert got.status is not None
    if dest.alive is not None and not dest.alive(got.status):
        return result(dest.check_id, dest.title, Status.FAIL,
                      f"{got.detail}{via}: not the {dest.what or 'expected'} answer (want 200 or 401)",
                      "check the URL in the profile, or what the proxy returns for it", started,
                      http_status=got.status, **details)
    tls = f", {got.tls_version}" if got.tls_version else ""
    return result(dest.check_id, dest.title, Status.PASS,
                  f"{got.detail}{via} (DNS, TCP{', TLS' if got.tls_version else ''}, HTTP{tls}; "
                  "checked from this machine)", None, started, http_status=got.status, **details)


def outbound_checks(destinations: list[Destination], *, ca_file: str | None = None,
                    proxy: Proxy | bool | None = True,
                    timeout_for: Callable[[str], float] = lambda _id: 10.0) -> list[Check]:
    """One check per destination. The runner bounds each check by its timeout; the probe's own
    deadline sits a little inside it, so a hang is reported with the stage that hung."""
    def make(dest: Destination) -> Check:
        limit = timeout_for(dest.check_id)

        async def run() -> CheckResult:
            return await check_destination(dest, timeout=limit * 0.9, ca_file=ca_file, proxy=proxy)
        return Check(dest.check_id, dest.title, run, limit)

    return [make(d) for d in destinations]
