"""Cloud identity check: the profile's credentials sign in (STS, google-auth, azure-identity)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.inputs import SecretGetter
from hfwizard.checks.threads import imported, in_thread
from hfwizard.errors import SecretError

if TYPE_CHECKING:
    from hfwizard.cloud.aws import AwsOptions
    from hfwizard.cloud.azure import AzureOptions
    from hfwizard.cloud.gcp import GcpOptions

CHECK_ID = "cloud/identity"


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
    # Where the cloud's calls go (private endpoints, sovereign clouds, a CA bundle, the tests' stand-ins);
    # None: the public endpoints. The profile's fields below are laid over it.
    options: AwsOptions | GcpOptions | AzureOptions | None = None
    # AWS
    aws_profile: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_id: SecretGetter | None = field(default=None, repr=False)
    aws_secret_access_key: SecretGetter | None = field(default=None, repr=False)
    # GCP
    gcp_project: str | None = None
    gcp_key_file: str | None = None  # a service-account key file (file: reference)
    gcp_key_ref: str | None = None  # the profile's reference, whatever its kind
    # Azure
    azure_subscription: str | None = None
    azure_tenant: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: SecretGetter | None = field(default=None, repr=False)
    azure_secret_ref: str | None = None  # the reference itself, to name it in findings
    azure_authority_host: str | None = None
    azure_management_endpoint: str | None = None


@dataclass(frozen=True)
class Signed:
    """A provider and a credential ready for it. Secrets the profile resolved to stay in memory, sealed
    inside the credential: nothing is written to disk or the environment for the occasion."""

    provider: Any
    credential: Any


async def sign_in(access: CloudAccess) -> Signed:
    """The provider and credential for `access`; raises CredentialProblem (or SecretError)."""
    # The provider's modules are imported on the checks' pool: on the event loop their import would
    # hold every other check back (several checks sign in at once).
    await imported(f"hfwizard.cloud.{access.cloud}" if access.cloud in ("aws", "gcp", "azure") else "hfwizard.cloud")
    if access.cloud == "aws":
        return await _aws(access)
    if access.cloud == "gcp":
        return await in_thread(_gcp, access)
    if access.cloud == "azure":
        secret = await access.azure_client_secret() if access.azure_client_secret else None
        return await in_thread(_azure, access, secret)
    raise CredentialProblem(f"no cloud credentials to check for {access.cloud}")


async def _aws(access: CloudAccess) -> Signed:
    from hfwizard.cloud.aws import AwsOptions, AwsProvider

    base = access.options if isinstance(access.options, AwsOptions) else AwsOptions()
    provider = AwsProvider(replace(base, endpoint_url=access.aws_endpoint_url or base.endpoint_url,
                                   region=access.region or base.region, timeout_s=access.timeout_s))
    key_id = await access.aws_access_key_id() if access.aws_access_key_id else None
    secret = await access.aws_secret_access_key() if access.aws_secret_access_key else None
    if (key_id is None) != (secret is None):
        raise CredentialProblem("credentials.aws has only one of accessKeyId and secretAccessKey",
                                "give both, or neither (a named profile or SSO instead)")
    if key_id is not None and secret is not None:
        return Signed(provider, provider.static_credential(key_id, secret, name="credentials.aws (static keys)",
                                                           source="the install profile", region=access.region))
    if access.aws_profile:
        from hfwizard.cloud.base import Cloud, FoundCredential

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

    base = access.options if isinstance(access.options, GcpOptions) else GcpOptions()
    provider = GcpProvider(replace(base, project=access.gcp_project or base.project, timeout_s=access.timeout_s))
    if access.gcp_key_ref and not access.gcp_key_file:
        # The Google layer loads keys from files; checking Application Default Credentials instead
        # would report on an identity the install will not use.
        raise CredentialProblem(f"credentials.gcp.serviceAccountKey is {access.gcp_key_ref}: only file: "
                                "references are supported for service-account keys",
                                "save the key JSON to a 0600 file and use file:PATH")
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


def _azure(access: CloudAccess, secret: str | None) -> Signed:
    from hfwizard.cloud.azure import AzureOptions, AzureProvider

    base = access.options if isinstance(access.options, AzureOptions) else AzureOptions()
    provider = AzureProvider(replace(
        base, subscription=access.azure_subscription or base.subscription, timeout_s=access.timeout_s,
        authority_host=access.azure_authority_host or base.authority_host,
        management_endpoint=(access.azure_management_endpoint or base.management_endpoint).rstrip("/")))
    if secret is not None and not access.azure_client_id:
        raise CredentialProblem("credentials.azure has a clientSecret but no clientId",
                                "set credentials.azure.clientId to the service principal's application id")
    if access.azure_client_id and secret is not None:
        tenant = access.azure_tenant or os.environ.get("AZURE_TENANT_ID")
        if not tenant:
            raise CredentialProblem("credentials.azure has a clientId and clientSecret but no tenantId",
                                    "set credentials.azure.tenantId (az account show --query tenantId)")
        return Signed(provider, provider.client_secret_credential(
            tenant, access.azure_client_id, secret, subscription_id=access.azure_subscription,
            source=f"credentials.azure.clientSecret ({access.azure_secret_ref})"))
    found = provider.discover_credentials()
    if access.azure_client_id:
        # No secret in the profile: a certificate or federated token for this application, from the
        # environment, is the only way left to sign in as it.
        found = [c for c in found if c.kind == "azure-env" and c.details.get("client_id") == access.azure_client_id]
        if not found:
            raise CredentialProblem(f"credentials.azure.clientId {access.azure_client_id} has no clientSecret, "
                                    "and the environment has no certificate or federated token for it",
                                    "set credentials.azure.clientSecret to a reference (env:, file: or "
                                    "keyring:), or export AZURE_CLIENT_CERTIFICATE_PATH")
    if not found:
        raise CredentialProblem("no Azure credentials: no service principal in "
                                "the environment and no Azure CLI "
                                "login", "run: az login (or export AZURE_TENANT_ID, AZURE_CLIENT_ID, "
                                "AZURE_CLIENT_SECRET)")
    return Signed(provider, found[0])


async def check_identity(access: CloudAccess, title: str = "Cloud identity") -> CheckResult:
    started = time.monotonic()
    try:
        signed = await sign_in(access)
    except SecretError as exc:
        return result(CHECK_ID, title, Status.FAIL, f"credentials.{access.cloud}: {exc.message}", exc.remedy,
                      started)
    except CredentialProblem as exc:
        return result(CHECK_ID, title, Status.FAIL, exc.message, exc.remedy, started)
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
