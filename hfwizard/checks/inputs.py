"""Secret inputs of checks: resolved inside the check (bounded by its timeout), failures as findings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.threads import in_thread
from hfwizard.errors import SecretError

if TYPE_CHECKING:
    from hfwizard.profile import InstallProfile

# Returns the secret's value, or None when the profile leaves the field empty; raises SecretError
# (whose message names the reference, never the value) when the reference does not resolve.
SecretGetter = Callable[[], Awaitable[str | None]]


def secret_getter(ref: str | None, *, base_dir: Path | None = None,
                  read_k8s: Callable[[str, str], str] | None = None) -> SecretGetter:
    """A getter for a profile reference; resolution runs in a thread (keyring may block on D-Bus).

    `read_k8s(secret, key)` reads `k8s:SECRET/KEY` references from the cluster; without it they fail
    as unresolvable here. The value is resolved once and shared by every check that asks.
    """
    memo: list[str | None] = []
    lock = asyncio.Lock()

    def load() -> str | None:
        from hfwizard.secrets import RefKind, parse_ref, resolve

        assert ref is not None
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.K8S and read_k8s is not None:
            return read_k8s(*parsed.k8s_secret)
        return resolve(parsed, base_dir=base_dir).reveal()

    async def get() -> str | None:
        if ref is None:
            return None
        async with lock:
            if not memo:
                # env: and file: resolve in microseconds (the file read is bounded and never blocks on
                # a FIFO): on the loop, they do not queue behind the SDK imports filling the threads.
                memo.append(load() if ref.startswith(("env:", "file:")) else await in_thread(load))
        return memo[0]

    return get


def fixed_secret(value: str | None) -> SecretGetter:
    """A getter for a value already in hand (tests, the TUI's typed-once secrets)."""

    async def get() -> str | None:
        return value

    return get


def secret_failed(check_id: str, title: str, field: str, err: SecretError, started: float) -> CheckResult:
    """The FAIL a check reports when its secret reference does not resolve."""
    return result(check_id, title, Status.FAIL, f"{field}: {err.message}",
                  err.remedy or "fix the reference (env:NAME, file:PATH, keyring:SERVICE/NAME)", started)


def platform_inputs_check(profile: InstallProfile, timeout_s: float = 10.0) -> Check:
    """`platform/inputs`: the profile fields the real platform cannot run without (license, pull token,
    data services, sign-in, domain), each named with what it is for. Nothing is resolved or read."""
    cid, title = "platform/inputs", "Profile gives what the platform needs"

    def catalog_of(version: str) -> Any:
        from hfwizard.platform.catalog import load_catalog

        return load_catalog(version)

    def missing_in(catalog: Any) -> list[str]:
        from hfwizard.platform.secretsets import missing_inputs

        return missing_inputs(profile, catalog)

    async def run() -> CheckResult:
        from hfwizard.errors import HfwizardError

        started = time.monotonic()
        # In threads, imports included: importing and parsing the catalog would hold the event loop, and
        # every check started after this one would wait for it.
        try:
            catalog = await in_thread(catalog_of, profile.platform.version)
        except HfwizardError as exc:
            return result(cid, title, Status.FAIL, exc.message, exc.remedy or "set platform.version", started)
        missing = await in_thread(missing_in, catalog)
        if missing:
            return result(cid, title, Status.FAIL, f"{len(missing)} missing: " + "; ".join(missing),
                          "set these fields in the profile (secrets as references: env:, file:, keyring:, k8s:)",
                          started, missing=", ".join(m.split(":", 1)[0] for m in missing))
        return result(cid, title, Status.PASS, f"every input platform {catalog.platform} needs is given", None,
                      started)

    return Check(cid, title, run, timeout_s)
