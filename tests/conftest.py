"""Shared pytest set-up: fixture modules live in tests/fixtures/, one per kind of server, and a guard
that keeps every test on this machine.

The guard is an audit hook: any connection to, or name lookup of, something other than loopback is
refused and recorded, and the session fails listing them. Child processes the tests start are
checked by their own tests (they are pointed at loopback stand-ins).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

import pytest

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.cluster",
    "tests.fixtures.cloud",
]


def _sandbox_charts() -> None:
    """Rehearsals the tests start (the wizard's, plain mode's) install Highflame's charts from the shared
    folder, never from the internet; where the folder is absent they fail naming `--charts DIR`."""
    import os

    from tests.platform_support import CHARTS

    if (CHARTS / "index.yaml").is_file():
        os.environ.setdefault("HFWIZARD_SANDBOX_CHARTS", str(CHARTS))


_sandbox_charts()

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_violations: list[str] = []


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).split("%", 1)[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _reserved_invalid(host: Any) -> bool:
    """A name under `.invalid`, which RFC 6761 reserves to never resolve: the recovery tests' mistyped
    registry mirror. Its lookup is refused here like any other, but it is no attempt to leave."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return str(host or "").rstrip(".").lower().endswith(".invalid")


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _violations.append(f"connect to {address!r}")
            raise ConnectionRefusedError(f"tests stay on this machine: refused a connection to {address[0]}")
    elif event == "socket.getaddrinfo" and not _is_local(args[0]):
        if not _reserved_invalid(args[0]):  # never resolves (RFC 6761): answered here, nothing leaves
            _violations.append(f"name lookup of {args[0]!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests stay on this machine: refused to resolve {args[0]}")


sys.addaudithook(_guard)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow go first, in their order: with workers (`./dev test` runs `-n`), the longest one
    starts at once and the others fill the other workers around it, instead of it running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller reports them (pytest_testnodedown)
        workeroutput["violations"] = sorted(set(_violations))
    if _violations:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = sorted(set(_violations))
        if reporter is not None:
            reporter.write_sep("=", "tests tried to leave this machine", red=True)
            for line in lines:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: a worker's attempts to leave the machine fail the whole run too."""
    _violations.extend(getattr(node, "workeroutput", {}).get("violations", []))


@pytest.fixture(autouse=True)
def _live_checks_stay_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wizard's live checks (a host resolves, the Clerk host answers) run for real on loopback names;
    any other name is answered "not checked" rather than looked up, so a screen test stays on this machine."""
    from hfwizard import operations

    for name in ("resolves", "answers_https", "port_answers"):
        real = getattr(operations, name)

        def local_only(host: str, *args: Any, _real: Any = real, **kwargs: Any) -> tuple[bool, str]:
            if _is_local(host):
                return tuple(_real(host, *args, **kwargs))  # type: ignore[return-value]
            return False, f"{host}: not checked (tests stay on this machine)"

        monkeypatch.setattr(operations, name, local_only)
