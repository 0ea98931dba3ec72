"""Clerk checks: key pair well formed and of one environment, and the secret key accepted by Clerk."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.http import Proxy, Stage, http_get
from hfwizard.checks.inputs import SecretGetter, secret_failed
from hfwizard.checks.outbound import clerk_api_destination
from hfwizard.errors import SecretError

_SK = re.compile(r"^sk_(test|live)_[A-Za-z0-9]{8,}$")
_DASHBOARD = "copy both keys from the same instance's API Keys page in the Clerk Dashboard"


def secret_key_environment(value: str) -> str | None:
    """"test" or "live" for a well-formed secret key, else None."""
    m = _SK.match(value.strip())
    return m.group(1) if m else None


async def check_keys(publishable_key: str | None, secret_key: SecretGetter, *, secret_ref: str | None,
                     secret_optional: bool = False,
                     check_id: str = "clerk/keys",
                     title: str = "Clerk keys well formed and paired") -> CheckResult:
    """Offline: the publishable key decodes to a frontend host, the secret key looks like one, and both
    come from the same environment (a test key with a live key is the usual copy-paste slip)."""
    from hfwizard.profile import clerk_frontend_host

    started = time.monotonic()
    ref = f" ({secret_ref})" if secret_ref else ""
    if not publishable_key:
        return result(check_id, title, Status.FAIL, "clerk.publishableKey is not set",
                      "Highflame provides the Clerk keys at onboarding: put the publishable key "
                      "in the profile",
                      started)
    try:
        host = clerk_frontend_host(publishable_key)
    except ValueError as exc:
        return result(check_id, title, Status.FAIL, f"clerk.publishableKey {exc}", _DASHBOARD, started)
    pk_env = "live" if publishable_key.startswith("pk_live_") else "test"
    try:
        value = await secret_key()
    except SecretError as exc:
        return secret_failed(check_id, title, "clerk.secretKey", exc, started)
    if value is None and secret_optional:
        return result(check_id, title, Status.PASS, f"{pk_env} publishable key; frontend API host {host}; "
                      "no secret key (not needed for a sandbox rehearsal)", None, started, environment=pk_env)
    if value is None:
        return result(check_id, title, Status.FAIL, "clerk.secretKey is not set",
                      "add it as a reference, e.g. secretKey: env:CLERK_SECRET_KEY", started)
    sk_env = secret_key_environment(value)
    if sk_env is None:
        hint = " (it looks like a publishable key)" if value.strip().startswith("pk_") else ""
        return result(check_id, title, Status.FAIL,
                      f"clerk.secretKey{ref} is not a Clerk secret key (sk_test_… or sk_live_…){hint}",
                      _DASHBOARD, started)
    if sk_env != pk_env:
        return result(check_id, title, Status.FAIL,
                      f"clerk.publishableKey is a {pk_env} key but clerk.secretKey{ref} is a {sk_env} key: "
                      "they belong to different Clerk environments", _DASHBOARD, started)
    return result(check_id, title, Status.PASS, f"{pk_env} keys; frontend API host {host}", None, started,
                  environment=pk_env, frontend_host=host)


async def check_secret_accepted(api_url: str, secret_key: SecretGetter, *, timeout: float,
                                secret_ref: str | None = None, ca_file: str | None = None,
                                proxy: Proxy | bool | None = True, check_id: str = "clerk/api",
                                title: str = "Clerk accepts the secret key") -> CheckResult:
    """Live: GET {apiUrl}/v1/jwks with the secret key as bearer token (Clerk's Backend API answers it
    with the instance's JSON Web Key Set, or 401 for a key it does not know). Read-only."""
    started = time.monotonic()
    ref = f" ({secret_ref})" if secret_ref else ""
    try:
        value = await secret_key()
    except SecretError as exc:
        return secret_failed(check_id, title, "clerk.secretKey", exc, started)
    if value is None:
        return result(check_id, title, Status.FAIL, "clerk.secretKey is not set", "add it as a reference, "
                      "e.g. secretKey: env:CLERK_SECRET_KEY", started)
    if secret_key_environment(value) is None:
        # Sending a malformed value anywhere helps nobody; clerk/keys says what is wrong with it.
        return result(check_id, title, Status.FAIL, f"clerk.secretKey{ref} is not a Clerk secret key "
                      "(see clerk/keys)", _DASHBOARD, started)
    url = clerk_api_destination(api_url).url
    got = await http_get(url, timeout=timeout, ca_file=ca_file, proxy=proxy,
                         headers={"Authorization": f"Bearer {value.strip()}"})
    via = f" through proxy {got.proxy}" if got.proxy else ""
    if not got.ok:
        stage = got.stage or Stage.HTTP
        return result(check_id, title, Status.FAIL, f"could not ask Clerk{via}: {got.detail}",
                      "see outbound/clerk-api; check HTTPS_PROXY and the firewall", started,
                      stage=stage.value)
    status = got.status or 0
    if status == 200:
        return result(check_id, title, Status.PASS, f"Clerk accepted the secret key{ref} ({_host(url)})",
                      None,
                      started)
    if status in (401, 403):
        return result(check_id, title, Status.FAIL, f"Clerk rejected the secret key{ref} ({status} from "
                      f"{_host(url)})", "the key was revoked, rotated or mistyped: " + _DASHBOARD, started,
                      http_status=status)
    if status == 429:
        return result(check_id, title, Status.WARN, "Clerk is rate-limiting this address (429): the key "
                      "was not confirmed", "run the preflight again in a minute", started,
                      http_status=status)
    return result(check_id, title, Status.FAIL,
                  f"{_host(url)} answered {status}{via}, not a Clerk backend API "
                  "answer", "check clerk.apiUrl (default https://api.clerk.com) and any proxy in between",
                  started, http_status=status)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def clerk_checks(publishable_key: str | None, api_url: str, secret_key: SecretGetter, *,
                 secret_ref: str | None, ca_file: str | None = None, proxy: Proxy | bool | None = True,
                 timeout_for: Callable[[str], float] = lambda _id: 10.0,
                 secret_optional: bool = False) -> list[Check]:
    keys_limit, api_limit = timeout_for("clerk/keys"), timeout_for("clerk/api")

    async def keys() -> CheckResult:
        return await check_keys(publishable_key, secret_key, secret_ref=secret_ref,
                                secret_optional=secret_optional)

    async def api() -> CheckResult:
        return await check_secret_accepted(api_url, secret_key, timeout=api_limit * 0.9,
                                           secret_ref=secret_ref,
                                           ca_file=ca_file, proxy=proxy)

    return [Check("clerk/keys", "Clerk keys well formed and paired", keys, keys_limit),
            Check("clerk/api", "Clerk accepts the secret key", api, api_limit)]
