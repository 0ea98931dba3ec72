"""Cloud identity check: the profile's credentials sign in (STS, google-auth, azure-identity)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.inputs import SecretGetter
from hfwizard.checks.threads import in_thread
from hfwizard.errors import SecretError

CHECK_ID = "cloud/identity"
_PREFLIGHT_PROFILE = "hfwizard-preflight"


class CredentialProblem(Exception):
    """The profile's credentials cannot be turned into something the cloud layer can use."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message, self.remedy = message, remedy


@dataclass(frozen=True)
class CloudAccess:
    """Which cloud, and how to sign in, from the profile: secrets stay behind their getters."""

    cloud: str  # aws, gcp, azure
    region: str | None = None
    timeout_s: float = 8.0
    # AWS
    aws_profile: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_id: SecretGetter | None = field(default=None, repr=False)
    aws_secret_access_key: SecretGetter | None = field(default=None, repr=False)
    # GCP
    gcp_project: str | None = None
    gcp_key_file: str | None = None  # a service-account key file (file: reference)
    # Azure
    azure_subscription: str | None = None
    azure_tenant: str | None = None
    azure_client_id: str | None = None
    azure_secret_ref: str | None = None  # only env:AZURE_CLIENT_SECRET is usable (see _azure)


@dataclass
class Signed:
    """A provider and a credential ready for it; `close` removes anything made for the occasion."""

    provider: Any
    credential: Any
    cleanup: list[Path] = field(default_factory=list)

    def close(self) -> None:
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)


async def sign_in(access: CloudAccess) -> Signed:
    """The provider and credential for `access`; raises CredentialProblem (or SecretError)."""
    if access.cloud == "aws":
        return await _aws(access)
    if access.cloud == "gcp":
        return await in_thread(_gcp, access)
    if access.cloud == "azure":
        return await in_thread(_azure, access)
    raise CredentialProblem(f"no cloud credentials to check for {access.cloud}")


async def _aws(access: CloudAccess) -> Signed:
    from hfwizard.cloud.aws import AwsOptions, AwsProvider
    from hfwizard.cloud.base import Cloud, FoundCredential

    key_id = await access.aws_access_key_id() if access.aws_access_key_id else None
    secret = await access.aws_secret_access_key() if access.aws_secret_access_key else None
    if (key_id is None) != (secret is None):
        raise CredentialProblem("credentials.aws has only one of accessKeyId and secretAccessKey",
                                "give both, or neither (a named profile or SSO instead)")
    if key_id is not None and secret is not None:
        # The AWS layer reads static keys from a credentials file or the environment. Changing the
        # process environment would leak into other threads, so the keys go into a private 0600 file
        # in a 0700 directory that is removed as soon as the check ends.
        folder = Path(tempfile.mkdtemp(prefix="hfwizard-aws-"))
        creds = folder / "credentials"
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"[{_PREFLIGHT_PROFILE}]\naws_access_key_id = {key_id.strip()}\n"
                     f"aws_secret_access_key = {secret.strip()}\n")
        options = AwsOptions(endpoint_url=access.aws_endpoint_url, region=access.region,
                             timeout_s=access.timeout_s, credentials_file=creds,
                             config_file=folder / "config")
        cred = FoundCredential(Cloud.AWS, "aws-profile", "credentials.aws (static keys)",
                               "the install profile",
                               access.region, {"profile": _PREFLIGHT_PROFILE})
        return Signed(AwsProvider(options), cred, [folder])
    provider = AwsProvider(AwsOptions(endpoint_url=access.aws_endpoint_url, region=access.region,
                                      timeout_s=access.timeout_s))
    if access.aws_profile:
        cred = FoundCredential(Cloud.AWS, "aws-profile", access.aws_profile, "credentials.aws.profile",
                               access.region, {"profile": access.aws_profile})
        return Signed(provider, cred)
    found = await in_thread(provider.discover_credentials)
    env = [c for c in found if c.kind in ("aws-env", "aws-web-identity")]
    default = [c for c in found if c.details.get("profile") == "default"]
    chosen = (env or default)[0] if env or default else None
    if chosen is None:
        raise CredentialProblem("no AWS credentials: credentials.aws names no profile "
                                "or keys, and none are in "
                                "the environment or the default profile",
                                "set credentials.aws.profile, or run: aws configure / aws sso login")
    return Signed(provider, chosen)


def _gcp(access: CloudAccess) -> Signed:
    from hfwizard.cloud.gcp import GcpOptions, GcpProvider

    provider = GcpProvider(GcpOptions(project=access.gcp_project, timeout_s=access.timeout_s))
    if access.gcp_key_file:
        cred = provider.credential_from_file(Path(access.gcp_key_file), "credentials.gcp.serviceAccountKey")
        if cred is None:
            raise CredentialProblem(f"credentials.gcp.serviceAccountKey ({access.gcp_key_file}) is "
                                    f"not a Google "
                                    "credentials JSON file", "download a key for the service account again")
        return Signed(provider, cred)
    usable = [c for c in provider.discover_credentials() if c.kind in ("gcp-service-account", "gcp-adc")]
    if not usable:
        raise CredentialProblem("no Google credentials: no service-account key "
                                "in the profile and no Application "
                                "Default Credentials", "run: gcloud auth application-default login")
    return Signed(provider, usable[0])


def _azure(access: CloudAccess) -> Signed:
    from hfwizard.cloud.azure import AzureOptions, AzureProvider

    provider = AzureProvider(AzureOptions(subscription=access.azure_subscription, timeout_s=access.timeout_s))
    found = provider.discover_credentials()
    if access.azure_client_id:
        if access.azure_secret_ref not in (None, "env:AZURE_CLIENT_SECRET"):
            raise CredentialProblem("the Azure layer takes a "
                                    "service principal's secret from AZURE_CLIENT_SECRET "
                                    f"only; credentials.azure.clientSecret is {access.azure_secret_ref}",
                                    "export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET and set "
                                    "clientSecret: env:AZURE_CLIENT_SECRET")
        found = [c for c in found if c.kind == "azure-env"]
    if not found:
        raise CredentialProblem("no Azure credentials: no service principal in "
                                "the environment and no Azure CLI "
                                "login", "run: az login (or export AZURE_TENANT_ID, AZURE_CLIENT_ID, "
                                "AZURE_CLIENT_SECRET)")
    return Signed(provider, found[0])


@contextlib.contextmanager
def signed_in(signed: Signed) -> Iterator[Signed]:
    try:
        yield signed
    finally:
        signed.close()


async def check_identity(access: CloudAccess, title: str = "Cloud identity") -> CheckResult:
    started = time.monotonic()
    try:
        signed = await sign_in(access)
    except SecretError as exc:
        return result(CHECK_ID, title, Status.FAIL, f"credentials.{access.cloud}: {exc.message}", exc.remedy,
                      started)
    except CredentialProblem as exc:
        return result(CHECK_ID, title, Status.FAIL, exc.message, exc.remedy, started)
    with signed_in(signed):
        validation = await in_thread(signed.provider.validate, signed.credential)
    bad = [f for f in validation.findings if not f.ok]
    if validation.identity is None or bad:
        first = bad[0] if bad else None
        return result(CHECK_ID, title, Status.FAIL,
                      first.message if first else f"{signed.credential.name} did not sign in",
                      first.remedy if first else None, started, code=first.code if first else None)
    who = validation.identity
    return result(CHECK_ID, title, Status.PASS, f"{access.cloud}: {who.principal} (account {who.account})",
                  None,
                  started, account=who.account, principal=who.principal)


def identity_check(access: CloudAccess | None, timeout: float, reason: str = "") -> Check:
    async def run() -> CheckResult:
        if access is None:
            return result(CHECK_ID, "Cloud identity", Status.SKIPPED,
                          reason or "no cloud account in the profile")
        return await check_identity(access)

    return Check(CHECK_ID, "Cloud identity", run, timeout)
