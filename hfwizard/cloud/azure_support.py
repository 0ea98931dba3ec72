"""Azure helpers without a session: locations, VM and cache sizes, and errors turned into findings."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfwizard.cloud.base import (
    CacheInfo,
    Cloud,
    Finding,
    FoundCredential,
)

log = logging.getLogger("hfwizard.cloud.azure")

# Imported under load_sdk's lock before first use (see there).
AZURE_SDK = (
    "azure.core.exceptions",
    "azure.core.pipeline",
    "azure.core.pipeline.policies",
    "azure.core.pipeline.transport",
    "azure.core.rest",
    "azure.core",
    "azure.identity",
)

# The Entra ID application every AAD-enabled AKS API server accepts tokens for (fixed by Microsoft).
AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"

API = {  # api-version per resource provider; all GA versions
    "subscriptions": "2022-12-01",
    "aks": "2024-09-01",
    "compute": "2024-07-01",
    "postgres": "2024-08-01",
    "redis": "2024-11-01",
    "redis_enterprise": "2024-10-01",
    "storage": "2023-05-01",
}
BLOB_API_VERSION = "2023-11-03"

# Azure Cache for Redis memory per SKU (GiB), from the pricing tiers table.
_REDIS_SKU_GIB = {
    "C0": 0.25,
    "C1": 1.0,
    "C2": 2.5,
    "C3": 6.0,
    "C4": 13.0,
    "C5": 26.0,
    "C6": 53.0,
    "P1": 6.0,
    "P2": 13.0,
    "P3": 26.0,
    "P4": 53.0,
    "P5": 120.0,
}
# GiB per vCPU by VM family letter, for when the vmSizes lookup cannot be made.
_FAMILY_GIB_PER_VCPU = {"D": 4.0, "E": 8.0, "F": 2.0, "B": 4.0, "M": 28.0, "A": 2.0}



@dataclass(frozen=True)
class AzureOptions:
    """Where Azure calls go and how long they may take. URLs have no trailing slash."""

    authority_host: str | None = None  # Entra ID; default https://login.microsoftonline.com
    management_endpoint: str = "https://management.azure.com"
    subscription: str | None = None  # used when the credential names none
    timeout_s: float = 10.0
    ca_bundle: str | None = None
    config_dir: Path | None = None  # else $AZURE_CONFIG_DIR, else ~/.azure
    # Skip Entra's instance discovery (a call to login.microsoftonline.com): on for any custom authority.
    disable_instance_discovery: bool | None = None


def _norm(location: str) -> str:
    return location.replace(" ", "").lower()


def _resource_group(resource_id: str) -> str:
    m = re.search(r"/resourceGroups/([^/]+)", resource_id, re.IGNORECASE)
    return m.group(1) if m else ""


def _estimate_vm(size: str) -> tuple[int | None, float | None]:
    m = re.match(r"^Standard_([A-Z]+)(\d+)", size, re.IGNORECASE)
    if not m:
        return None, None
    cores = int(m.group(2))
    per = _FAMILY_GIB_PER_VCPU.get(m.group(1)[0].upper())
    return cores, (cores * per if per else None)


_AADSTS = re.compile(r"AADSTS(\d+)")


def _auth_finding(exc: Exception, credential: FoundCredential) -> Finding:
    """A finding from an Entra ID failure, keyed on its AADSTS code; the library's text is not quoted."""
    text = str(exc)
    code = (_AADSTS.search(text) or [None, ""])[1]
    client = credential.details.get("client_id", "the application")
    tenant = credential.details.get("tenant_id", "the tenant")
    name = type(exc).__name__
    if code == "7000215":
        where = (
            f"store it where {credential.source} points"
            if credential.kind == "azure-client-secret"
            else "set AZURE_CLIENT_SECRET"
        )
        return Finding(
            False,
            "azure/invalid-client-secret",
            f"Entra ID rejected the client secret of {client} (AADSTS7000215)",
            f"create a new secret (az ad app credential reset --id {client} --append) and {where}",
        )
    if code == "7000222":
        return Finding(
            False,
            "azure/client-secret-expired",
            f"the client secret of {client} has expired (AADSTS7000222)",
            f"create a new secret: az ad app credential reset --id {client} --append",
        )
    if code == "700016":
        return Finding(
            False,
            "azure/app-not-found",
            f"application {client} is not in tenant {tenant} (AADSTS700016)",
            "check AZURE_CLIENT_ID and AZURE_TENANT_ID",
        )
    if code in ("90002", "900023", "90072"):
        return Finding(
            False,
            "azure/tenant-not-found",
            f"tenant {tenant} was not found (AADSTS{code})",
            "check AZURE_TENANT_ID",
        )
    if code in ("50173", "700082", "70043", "50076", "50078", "50079"):
        return Finding(
            False,
            "azure/reauth-needed",
            f"the sign-in has expired or needs MFA again (AADSTS{code})",
            "run: az login",
        )
    if name == "CredentialUnavailableError":
        if credential.kind == "azure-cli":
            return Finding(False, "azure/cli-login-needed", "the Azure CLI is not signed in", "run: az login")
        return Finding(
            False,
            "azure/credential-unavailable",
            f"{credential.kind} is not available here",
            "use another credential",
        )
    if name in ("ServiceRequestError", "ServiceResponseError"):
        return Finding(
            False, "azure/unreachable", "could not reach Entra ID", "check the network, VPN and HTTPS_PROXY"
        )
    return Finding(
        False,
        "azure/auth-failed",
        f"Entra ID sign-in failed ({name}{', AADSTS' + code if code else ''})",
        "check the credential, or run: az login",
    )


def _http_finding(resp: Any, action: str) -> Finding:
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    code = str(err.get("code", "")) if isinstance(err, dict) else ""
    # The Blob service answers in XML and names the error in a header; ARM answers in JSON.
    code = code or str(resp.headers.get("x-ms-error-code", ""))
    if code in ("ContainerNotFound", "ResourceNotFound") and "blobs" in action:
        return Finding(False, "azure/container-not-found", f"{action}: the container does not exist ({code})")
    if code in ("MissingSubscriptionRegistration", "NoRegisteredProviderFound"):
        return Finding(
            False,
            "azure/provider-not-registered",
            f"{action}: resource provider not registered",
            "run: az provider register --namespace <provider>",
        )
    if resp.status_code in (401, 403) or code in ("AuthorizationFailed", "AuthorizationPermissionMismatch"):
        return Finding(
            False,
            "azure/permission-denied",
            f"permission denied: {action} ({code or resp.status_code})",
            f"assign this identity a role that allows {action}"
            + (" (Storage Blob Data Contributor)" if "blobs" in action else ""),
        )
    if resp.status_code == 404:
        return Finding(False, "azure/not-found", f"{action}: not found ({code or 404})", "check the names")
    return Finding(False, "azure/http-error", f"{action} failed: HTTP {resp.status_code} {code}".strip())


def _probe_finding(finding: Finding, account: str, container: str) -> Finding:
    """A blob-write failure said in terms of the bucket the profile names."""
    if finding.code == "azure/container-not-found":
        return Finding(
            False,
            finding.code,
            f"container {container} does not exist in storage account {account}",
            f"create it: az storage container create --account-name {account} --name {container} "
            "--auth-mode login",
        )
    if finding.code == "azure/permission-denied":
        return Finding(
            False,
            finding.code,
            f"not allowed to write blobs in {account}/{container}: {finding.message}",
            "assign this identity Storage Blob Data Contributor on the container or storage account "
            "(a data-plane role: Owner or Contributor alone is not enough)",
        )
    return finding


def _azure_cache(r: dict[str, Any], loc: str) -> CacheInfo:
    """One Azure Cache for Redis resource as a CacheInfo (its SKU gives the memory)."""
    p = r.get("properties") or {}
    sku = p.get("sku") or r.get("sku") or {}
    size = f"{sku.get('family', '')}{sku.get('capacity', '')}"
    port = p.get("sslPort") or p.get("port")
    return CacheInfo(
        Cloud.AZURE,
        r.get("name", ""),
        "redis",
        p.get("redisVersion"),
        (f"{p.get('hostName')}:{port}",) if p.get("hostName") else (),
        port,
        bool(p.get("shardCount")),
        f"{sku.get('name', '')} {size}".strip(),
        _REDIS_SKU_GIB.get(size),
        p.get("shardCount") or 1,
        p.get("replicasPerPrimary"),
        bool(p.get("sslPort")),
        loc,
        p.get("provisioningState"),
        r.get("id"),
        {"kind": "azure-cache"},
    )
