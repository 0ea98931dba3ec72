"""Google Cloud helpers without a session: machine and tier sizes, versions, and errors turned into findings."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfwizard.cloud.base import (
    Finding,
    FoundCredential,
)

log = logging.getLogger("hfwizard.cloud.gcp")

# Imported under load_sdk's lock before first use (see there).
GCP_SDK = (
    "requests",
    "google.auth",
    "google.auth.transport.requests",
    "google.oauth2.credentials",
    "google.oauth2.service_account",
)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email")

# GiB of memory per vCPU by machine class, for when Compute's machineTypes.get cannot be called.
_CLASS_GIB_PER_VCPU = {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0, "megamem": 14.9, "ultramem": 24.0}
_SHARED_CORE = {
    "e2-micro": (2, 1.0),
    "e2-small": (2, 2.0),
    "e2-medium": (2, 4.0),
    "f1-micro": (1, 0.6),
    "g1-small": (1, 1.7),
}
# Memorystore for Redis Cluster node types: GiB per node (from the product's node-type table).
_REDIS_CLUSTER_NODE_GIB = {
    "REDIS_SHARED_CORE_NANO": 1.4,
    "REDIS_STANDARD_SMALL": 6.5,
    "REDIS_HIGHMEM_MEDIUM": 13.0,
    "REDIS_HIGHMEM_XLARGE": 58.0,
}



@dataclass(frozen=True)
class GcpOptions:
    """Where GCP calls go and how long they may take. Base URLs have no trailing slash."""

    token_uri: str | None = None  # overrides the key file's token_uri (tests; private endpoints)
    container_url: str = "https://container.googleapis.com"
    sqladmin_url: str = "https://sqladmin.googleapis.com"
    redis_url: str = "https://redis.googleapis.com"
    storage_url: str = "https://storage.googleapis.com"
    compute_url: str = "https://compute.googleapis.com"
    resourcemanager_url: str = "https://cloudresourcemanager.googleapis.com"
    project: str | None = None  # used when the credential names none
    timeout_s: float = 10.0
    ca_bundle: str | None = None  # a CA file for TLS-inspecting proxies (and the tests' stand-ins)
    cloudsdk_config: Path | None = None  # else $CLOUDSDK_CONFIG, else ~/.config/gcloud


def _refresh_finding(exc: Exception, credential: FoundCredential | None) -> Finding:
    """A finding for a failed token refresh. Built from the OAuth error code, never from the request."""
    name = type(exc).__name__
    if name == "TransportError":
        return Finding(
            False,
            "gcp/unreachable",
            "could not reach Google's token endpoint",
            "check the network, VPN and HTTPS_PROXY",
        )
    error = ""
    if len(exc.args) > 1 and isinstance(exc.args[1], dict):
        error = str(exc.args[1].get("error", ""))
    if not error and exc.args:
        error = str(exc.args[0]).split(":", 1)[0].strip()
    kind = credential.kind if credential else ""
    email = (
        credential.details.get("client_email", "the service account") if credential else "the service account"
    )
    if error == "invalid_grant":
        if kind == "gcp-service-account":
            return Finding(
                False,
                "gcp/key-rejected",
                f"Google rejected the key of {email} (deleted or disabled key, or this clock is off)",
                f"create a new key: gcloud iam service-accounts keys create key.json --iam-account {email}",
            )
        return Finding(
            False,
            "gcp/reauth-needed",
            "the Application Default Credentials were revoked or have expired",
            "run: gcloud auth application-default login",
        )
    if error in ("invalid_client", "unauthorized_client"):
        return Finding(
            False,
            "gcp/invalid-client",
            f"Google rejected the OAuth client ({error})",
            "run: gcloud auth application-default login, or use a service-account key",
        )
    if name == "RefreshError":
        return Finding(
            False,
            "gcp/refresh-failed",
            f"could not get a Google access token ({error or name})",
            "run: gcloud auth application-default login",
        )
    return Finding(False, "gcp/error", f"could not get a Google access token ({name})")


def _http_finding(resp: Any, action: str, project: str) -> Finding:
    try:
        err = resp.json().get("error", {})
    except ValueError:
        err = {}
    message = str(err.get("message", "")) if isinstance(err, dict) else ""
    reasons = (
        {str(d.get("reason", "")) for d in (err.get("details") or []) if isinstance(d, dict)}
        | {str(e.get("reason", "")) for e in (err.get("errors") or []) if isinstance(e, dict)}
        if isinstance(err, dict)
        else set()
    )
    host = resp.url.split("/")[2] if resp.url else "the API"
    if reasons & {"SERVICE_DISABLED", "accessNotConfigured"}:
        api = host.split(":")[0] if host.endswith("googleapis.com") else host
        return Finding(
            False,
            "gcp/api-disabled",
            f"the API behind {action} is not enabled in project {project}",
            f"run: gcloud services enable {api} --project {project}",
        )
    if resp.status_code == 401:
        return Finding(
            False,
            "gcp/unauthenticated",
            f"{action}: the token was not accepted",
            "run: gcloud auth application-default login",
        )
    if resp.status_code == 403:
        return Finding(
            False,
            "gcp/permission-denied",
            f"permission denied: {action} on project {project}",
            f"grant a role with {action} to this identity in project {project}",
        )
    if resp.status_code == 404:
        return Finding(
            False,
            "gcp/not-found",
            f"{action}: not found ({message or 'no such resource'})",
            "check the project and names",
        )
    return Finding(False, "gcp/http-error", f"{action} failed: HTTP {resp.status_code} {message}".strip())


def _probe_finding(finding: Finding, bucket: str, credential: FoundCredential) -> Finding:
    """A failed probe upload said in terms of the bucket, not of the project-wide API call."""
    if finding.code == "gcp/not-found":
        return Finding(
            False,
            "gcp/bucket-not-found",
            f"bucket gs://{bucket} does not exist",
            f"create it: gcloud storage buckets create gs://{bucket}, or fix clickhouse.backup.bucket",
        )
    if finding.code == "gcp/permission-denied":
        email = credential.details.get("client_email")
        member = f"serviceAccount:{email}" if email else "<this identity>"
        return Finding(
            False,
            finding.code,
            f"permission denied: storage.objects.create on gs://{bucket}",
            f"grant roles/storage.objectUser on the bucket: gcloud storage buckets add-iam-policy-binding "
            f"gs://{bucket} --member {member} --role roles/storage.objectUser",
        )
    return finding


def _estimate_machine(machine_type: str) -> tuple[int | None, float | None]:
    if machine_type in _SHARED_CORE:
        return _SHARED_CORE[machine_type]
    custom = re.match(r"^(?:[a-z0-9]+-)?custom-(\d+)-(\d+)", machine_type)
    if custom:
        return int(custom.group(1)), round(int(custom.group(2)) / 1024, 2)
    m = re.match(r"^[a-z0-9]+-([a-z]+)-(\d+)", machine_type)
    if not m:
        return None, None
    cores = int(m.group(2))
    per = _CLASS_GIB_PER_VCPU.get(m.group(1))
    return cores, (cores * per if per else None)


def _sql_tier(tier: str | None) -> tuple[int | None, float | None]:
    if not tier:
        return None, None
    m = re.match(r"^db-custom-(\d+)-(\d+)$", tier)
    if m:
        return int(m.group(1)), round(int(m.group(2)) / 1024, 2)
    m = re.match(r"^db-perf-optimized-N-(\d+)$", tier)
    if m:
        return int(m.group(1)), int(m.group(1)) * 8.0
    return {"db-f1-micro": (1, 0.6), "db-g1-small": (1, 1.7)}.get(tier, (None, None))


def _sql_version(text: str) -> str | None:
    """POSTGRES_17_2 -> 17.2, POSTGRES_17 -> 17."""
    m = re.match(r"^POSTGRES_(\d+)(?:_(\d+))?", text or "")
    if not m:
        return None
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def _redis_version(text: str | None) -> str | None:
    """REDIS_7_2 -> 7.2."""
    m = re.match(r"^REDIS_(\d+)(?:_(\d+))?", text or "")
    return (m.group(1) + (f".{m.group(2)}" if m.group(2) else "")) if m else text
