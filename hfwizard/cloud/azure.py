"""Azure discovery through azure-identity: env/CLI/managed identity; AKS, PostgreSQL, Redis, Blob storage."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hfwizard.cloud.base import (
    BucketInfo,
    CacheInfo,
    Cloud,
    CloudError,
    ClusterInfo,
    DatabaseInfo,
    Finding,
    FoundCredential,
    Identity,
    NodePool,
    Sealed,
    Validation,
    exec_user,
    home_relative,
    jwt_claims,
    load_sdk,
    write_kubeconfig,
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


class AzureProvider:
    """Azure behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.AZURE

    def __init__(self, options: AzureOptions | None = None) -> None:
        self.options = options or AzureOptions()
        self._accounts: dict[str, dict[str, Any]] = {}

    # --- discovery -----------------------------------------------------------------------------

    def _config_dir(self) -> Path:
        return (
            self.options.config_dir or Path(os.environ.get("AZURE_CONFIG_DIR") or "~/.azure")
        ).expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """Service-principal variables, the Azure CLI's subscriptions (read from its profile file, no `az`
        run), and a managed identity when the environment announces one. No network."""
        env = os.environ
        found: list[FoundCredential] = []
        tenant, client = env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID")
        auth = (
            "secret"
            if env.get("AZURE_CLIENT_SECRET")
            else "certificate"
            if env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            else "federated-token"
            if env.get("AZURE_FEDERATED_TOKEN_FILE")
            else None
        )
        if tenant and client and auth:
            details = {"tenant_id": tenant, "client_id": client, "auth": auth}
            if env.get("AZURE_SUBSCRIPTION_ID"):
                details["subscription_id"] = env["AZURE_SUBSCRIPTION_ID"]
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-env",
                    f"service principal {client}",
                    "environment (AZURE_CLIENT_ID)",
                    None,
                    details,
                )
            )
        profile = self._config_dir() / "azureProfile.json"
        try:
            # The CLI writes this file with a byte-order mark.
            subs = json.loads(profile.read_text(encoding="utf-8-sig")).get("subscriptions") or []
        except (OSError, ValueError):
            subs = []
        for s in subs:
            user = s.get("user") or {}
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-cli",
                    s.get("name") or s.get("id", ""),
                    f"{home_relative(profile)} (az login)",
                    None,
                    {
                        "subscription_id": s.get("id", ""),
                        "tenant_id": s.get("tenantId", ""),
                        "user": user.get("name", ""),
                        "user_type": user.get("type", ""),
                        "default": str(bool(s.get("isDefault"))).lower(),
                        "state": s.get("state", ""),
                    },
                )
            )
        if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
            details = {"client_id": client} if client and not auth else {}
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-managed-identity",
                    "managed identity",
                    "environment (IDENTITY_ENDPOINT)",
                    None,
                    details,
                )
            )
        return found

    def client_secret_credential(
        self,
        tenant_id: str,
        client_id: str,
        secret: str,
        *,
        subscription_id: str | None = None,
        source: str = "given secret",
    ) -> FoundCredential:
        """An "azure-client-secret" credential: a service principal whose secret is already in hand
        (resolved from the profile's reference of any kind), handed to azure-identity from memory."""
        details = {"tenant_id": tenant_id, "client_id": client_id, "auth": "secret"}
        if subscription_id:
            details["subscription_id"] = subscription_id
        return FoundCredential(
            Cloud.AZURE,
            "azure-client-secret",
            f"service principal {client_id}",
            source,
            None,
            details,
            Sealed(client_secret=secret),
        )

    # --- credentials and HTTP ----------------------------------------------------------------------

    def _transport(self) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core.pipeline.transport import RequestsTransport

        return RequestsTransport(
            connection_timeout=self.options.timeout_s,
            read_timeout=self.options.timeout_s,
            connection_verify=self.options.ca_bundle or True,
        )

    def _credential(self, credential: FoundCredential) -> Any:
        """An azure-identity credential; secrets are read from the environment here and handed over."""
        load_sdk(*AZURE_SDK)
        import azure.identity as ai

        kw: dict[str, Any] = {"transport": self._transport(), "retry_total": 1}
        if self.options.authority_host:
            kw["authority"] = self.options.authority_host
        disable = self.options.disable_instance_discovery
        if disable is None:
            disable = bool(self.options.authority_host)
        env = os.environ
        if credential.kind == "azure-client-secret":
            return ai.ClientSecretCredential(
                credential.details.get("tenant_id", ""),
                credential.details.get("client_id", ""),
                (credential.sealed or Sealed()).reveal("client_secret") or "",
                disable_instance_discovery=disable,
                **kw,
            )
        if credential.kind == "azure-env":
            tenant, client = env.get("AZURE_TENANT_ID", ""), env.get("AZURE_CLIENT_ID", "")
            if env.get("AZURE_CLIENT_SECRET"):
                return ai.ClientSecretCredential(
                    tenant, client, env["AZURE_CLIENT_SECRET"], disable_instance_discovery=disable, **kw
                )
            if env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
                return ai.CertificateCredential(
                    tenant,
                    client,
                    env["AZURE_CLIENT_CERTIFICATE_PATH"],
                    password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
                    disable_instance_discovery=disable,
                    **kw,
                )
            return ai.WorkloadIdentityCredential(
                tenant_id=tenant,
                client_id=client,
                token_file_path=env.get("AZURE_FEDERATED_TOKEN_FILE", ""),
                disable_instance_discovery=disable,
                **kw,
            )
        if credential.kind == "azure-cli":
            if not shutil.which("az"):
                raise CloudError(
                    Finding(
                        False,
                        "azure/cli-missing",
                        "the Azure CLI profile is here but the `az` command is not installed",
                        "install the Azure CLI, or use a service principal (AZURE_TENANT_ID, "
                        "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)",
                    )
                )
            return ai.AzureCliCredential(
                tenant_id=credential.details.get("tenant_id") or "",
                process_timeout=int(max(self.options.timeout_s, 10)),
            )
        if credential.kind == "azure-managed-identity":
            return ai.ManagedIdentityCredential(
                client_id=credential.details.get("client_id") or None, transport=self._transport()
            )
        raise CloudError(
            Finding(False, "azure/unknown-credential", f"unknown credential kind {credential.kind}")
        )

    def access_token(self, credential: FoundCredential, scope: str) -> tuple[str, dt.datetime]:
        """A bearer token for `scope` and its expiry (UTC); failures become CloudError findings."""
        try:
            tok = self._credential(credential).get_token(scope)
        except CloudError:
            raise
        except Exception as exc:
            raise CloudError(_auth_finding(exc, credential)) from None
        return tok.token, dt.datetime.fromtimestamp(tok.expires_on, dt.UTC)

    def _client(self, credential: FoundCredential, scope: str) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HeadersPolicy, RetryPolicy

        cred = self._credential(credential)
        return PipelineClient(
            self.options.management_endpoint,
            policies=[
                HeadersPolicy({"Accept": "application/json"}),
                RetryPolicy(retry_total=1),
                BearerTokenCredentialPolicy(cred, scope),
            ],
            transport=self._transport(),
        )

    def _send(
        self,
        client: Any,
        method: str,
        url: str,
        action: str,
        credential: FoundCredential,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        try:
            resp = client.send_request(HttpRequest(method, url, headers=headers, content=content))
        except ClientAuthenticationError as exc:
            raise CloudError(_auth_finding(exc, credential)) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            host = url.split("/")[2] if "://" in url else url
            raise CloudError(
                Finding(
                    False,
                    "azure/unreachable",
                    f"could not reach {host} ({type(exc).__name__})",
                    "check the network, VPN and HTTPS_PROXY",
                )
            ) from None
        if resp.status_code >= 400:
            raise CloudError(_http_finding(resp, action))
        return resp

    def _list(self, client: Any, url: str, action: str, credential: FoundCredential) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = self._send(client, "GET", next_url, action, credential).json()
            items.extend(body.get("value") or [])
            next_url = body.get("nextLink")
        return items

    def _mgmt(self, path: str, api: str) -> str:
        return f"{self.options.management_endpoint}{path}?api-version={API[api]}"

    def _subscription(self, credential: FoundCredential) -> str:
        sub = (
            credential.details.get("subscription_id")
            or self.options.subscription
            or os.environ.get("AZURE_SUBSCRIPTION_ID")
        )
        if sub:
            return sub
        client = self._client(credential, self._mgmt_scope())
        subs = self._list(
            client, self._mgmt("/subscriptions", "subscriptions"), "subscriptions/read", credential
        )
        enabled = [s for s in subs if s.get("state", "Enabled") == "Enabled"]
        if len(enabled) == 1:
            return str(enabled[0]["subscriptionId"])
        raise CloudError(
            Finding(
                False,
                "azure/no-subscription",
                f"{len(enabled)} subscriptions visible to {credential.name}; none chosen",
                "set AZURE_SUBSCRIPTION_ID, or choose a subscription",
            )
        )

    def _mgmt_scope(self) -> str:
        return f"{self.options.management_endpoint}/.default"

    # --- validation ------------------------------------------------------------------------------

    def validate(self, credential: FoundCredential) -> Validation:
        """Get a management token, read who it names, and check the subscription is visible."""
        try:
            token, _ = self.access_token(credential, self._mgmt_scope())
            claims = jwt_claims(token)
            del token
            client = self._client(credential, self._mgmt_scope())
            subs = self._list(
                client, self._mgmt("/subscriptions", "subscriptions"), "subscriptions/read", credential
            )
        except CloudError as exc:
            return Validation(credential, None, (exc.finding,))
        except Exception as exc:  # nothing here may crash a screen
            return Validation(
                credential,
                None,
                (Finding(False, "azure/error", f"validation failed ({type(exc).__name__})"),),
            )
        wanted = (
            credential.details.get("subscription_id")
            or self.options.subscription
            or os.environ.get("AZURE_SUBSCRIPTION_ID")
        )
        chosen = (
            next((s for s in subs if s.get("subscriptionId") == wanted), None)
            if wanted
            else (subs[0] if len(subs) == 1 else None)
        )
        principal = str(
            claims.get("upn")
            or claims.get("unique_name")
            or claims.get("appid")
            or credential.details.get("client_id")
            or credential.details.get("user")
            or "unknown"
        )
        tenant = str(claims.get("tid") or credential.details.get("tenant_id") or "") or None
        if wanted and not chosen:
            return Validation(
                credential,
                None,
                (
                    Finding(
                        False,
                        "azure/subscription-not-visible",
                        f"subscription {wanted} is not visible to {principal}",
                        "grant this identity a role (Reader or more) on the subscription, or choose another",
                    ),
                ),
            )
        account = str(chosen["subscriptionId"]) if chosen else ""
        identity = Identity(
            Cloud.AZURE,
            account,
            principal,
            tenant,
            {
                "object_id": str(claims.get("oid", "")),
                "subscription_name": str(chosen.get("displayName", "")) if chosen else "",
                "subscriptions_visible": str(len(subs)),
            },
        )
        findings = [
            Finding(
                True,
                "azure/identity",
                f"{principal} in tenant {tenant}"
                + (f", subscription {identity.details['subscription_name'] or account}" if chosen else ""),
            )
        ]
        if not chosen:
            findings.append(
                Finding(
                    False,
                    "azure/no-subscription",
                    f"{len(subs)} subscriptions visible; none chosen",
                    "set AZURE_SUBSCRIPTION_ID, or choose a subscription",
                )
            )
        return Validation(credential, identity, tuple(findings))

    # --- AKS -------------------------------------------------------------------------------------

    def list_clusters(self, credential: FoundCredential, *, region: str | None = None) -> list[ClusterInfo]:
        sub = self._subscription(credential)
        client = self._client(credential, self._mgmt_scope())
        items = self._list(
            client,
            self._mgmt(f"/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters", "aks"),
            "Microsoft.ContainerService/managedClusters/read",
            credential,
        )
        out = []
        for c in items:
            loc = c.get("location", "")
            if region and _norm(loc) != _norm(region):
                continue
            props = c.get("properties") or {}
            pools = []
            for p in props.get("agentPoolProfiles") or []:
                cores, mem = self._vm_size(client, credential, sub, loc, p.get("vmSize"))
                auto = bool(p.get("enableAutoScaling"))
                pools.append(
                    NodePool(
                        p.get("name", ""),
                        p.get("vmSize"),
                        cores,
                        mem,
                        p.get("count"),
                        p.get("minCount") if auto else None,
                        p.get("maxCount") if auto else None,
                    )
                )
            fqdn = props.get("fqdn") or props.get("privateFQDN")
            aad = props.get("aadProfile") or {}
            out.append(
                ClusterInfo(
                    Cloud.AZURE,
                    c.get("name", ""),
                    loc,
                    props.get("currentKubernetesVersion") or props.get("kubernetesVersion"),
                    f"https://{fqdn}:443" if fqdn else None,
                    None,
                    tuple(pools),
                    (props.get("powerState") or {}).get("code") or props.get("provisioningState"),
                    c.get("id"),
                    {
                        "resource_group": _resource_group(c.get("id", "")),
                        "subscription_id": sub,
                        "aad": str(bool(aad.get("managed") or aad)).lower(),
                        "local_accounts": str(not props.get("disableLocalAccounts", False)).lower(),
                    },
                )
            )
        return out

    def _vm_size(
        self, client: Any, credential: FoundCredential, sub: str, location: str, size: str | None
    ) -> tuple[int | None, float | None]:
        if not size:
            return None, None
        key = _norm(location)
        if key not in self._accounts.setdefault("_vmsizes", {}):
            try:
                sizes = self._list(
                    client,
                    self._mgmt(
                        f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/{key}/vmSizes", "compute"
                    ),
                    "Microsoft.Compute/locations/vmSizes/read",
                    credential,
                )
                self._accounts["_vmsizes"][key] = {
                    s["name"].lower(): (s.get("numberOfCores"), round(s.get("memoryInMB", 0) / 1024, 2))
                    for s in sizes
                }
            except CloudError as exc:
                log.info("VM sizes for %s not listed (%s); estimated from names", key, exc.finding.code)
                self._accounts["_vmsizes"][key] = {}
        found = self._accounts["_vmsizes"][key].get(size.lower())
        return found if found else _estimate_vm(size)

    # --- PostgreSQL flexible server --------------------------------------------------------------

    def list_postgres(self, credential: FoundCredential, *, region: str | None = None) -> list[DatabaseInfo]:
        sub = self._subscription(credential)
        client = self._client(credential, self._mgmt_scope())
        items = self._list(
            client,
            self._mgmt(
                f"/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/flexibleServers", "postgres"
            ),
            "Microsoft.DBforPostgreSQL/flexibleServers/read",
            credential,
        )
        out = []
        for s in items:
            loc = s.get("location", "")
            if region and _norm(loc) != _norm(region):
                continue
            props = s.get("properties") or {}
            sku = (s.get("sku") or {}).get("name")
            cores, mem = self._vm_size(client, credential, sub, loc, sku)
            version = props.get("version")
            if version and props.get("minorVersion"):
                version = f"{version}.{props['minorVersion']}"
            out.append(
                DatabaseInfo(
                    Cloud.AZURE,
                    s.get("name", ""),
                    "postgres",
                    version,
                    props.get("fullyQualifiedDomainName"),
                    5432,
                    loc,
                    sku,
                    cores,
                    mem,
                    props.get("state"),
                    s.get("id"),
                    {
                        "tier": str((s.get("sku") or {}).get("tier", "")),
                        "resource_group": _resource_group(s.get("id", "")),
                        "storage_gb": str((props.get("storage") or {}).get("storageSizeGB", "")),
                    },
                )
            )
        return out

    # --- Redis -----------------------------------------------------------------------------------

    def list_redis(self, credential: FoundCredential, *, region: str | None = None) -> list[CacheInfo]:
        """Azure Cache for Redis, and Redis Enterprise / Azure Managed Redis (if registered)."""
        sub = self._subscription(credential)
        client = self._client(credential, self._mgmt_scope())
        out = []
        for r in self._list(
            client,
            self._mgmt(f"/subscriptions/{sub}/providers/Microsoft.Cache/redis", "redis"),
            "Microsoft.Cache/redis/read",
            credential,
        ):
            loc = r.get("location", "")
            if region and _norm(loc) != _norm(region):
                continue
            p = r.get("properties") or {}
            sku = p.get("sku") or r.get("sku") or {}
            size = f"{sku.get('family', '')}{sku.get('capacity', '')}"
            port = p.get("sslPort") or p.get("port")
            out.append(
                CacheInfo(
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
            )
        try:
            enterprise = self._list(
                client,
                self._mgmt(
                    f"/subscriptions/{sub}/providers/Microsoft.Cache/redisEnterprise", "redis_enterprise"
                ),
                "Microsoft.Cache/redisEnterprise/read",
                credential,
            )
        except CloudError as exc:
            if exc.finding.code not in ("azure/not-found", "azure/provider-not-registered"):
                raise
            enterprise = []
        for e in enterprise:
            loc = e.get("location", "")
            if region and _norm(loc) != _norm(region):
                continue
            p = e.get("properties") or {}
            dbs = self._list(
                client,
                f"{self.options.management_endpoint}{e.get('id', '')}/databases"
                f"?api-version={API['redis_enterprise']}",
                "Microsoft.Cache/redisEnterprise/databases/read",
                credential,
            )
            db = (dbs[0].get("properties") or {}) if dbs else {}
            port = db.get("port", 10000)
            out.append(
                CacheInfo(
                    Cloud.AZURE,
                    e.get("name", ""),
                    "redis",
                    p.get("redisVersion"),
                    (f"{p.get('hostName')}:{port}",) if p.get("hostName") else (),
                    port,
                    db.get("clusteringPolicy") == "OSSCluster" if db else None,
                    (e.get("sku") or {}).get("name"),
                    None,
                    None,
                    None,
                    db.get("clientProtocol", "Encrypted") == "Encrypted",
                    loc,
                    p.get("provisioningState"),
                    e.get("id"),
                    {"kind": "redis-enterprise"},
                )
            )
        return out

    # --- Blob storage ----------------------------------------------------------------------------

    def _storage_accounts(self, credential: FoundCredential) -> list[dict[str, Any]]:
        sub = self._subscription(credential)
        client = self._client(credential, self._mgmt_scope())
        accounts = self._list(
            client,
            self._mgmt(f"/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts", "storage"),
            "Microsoft.Storage/storageAccounts/read",
            credential,
        )
        self._accounts.update({a.get("name", ""): a for a in accounts})
        return accounts

    def list_buckets(self, credential: FoundCredential) -> list[BucketInfo]:
        """Blob containers of every storage account, named "account/container"."""
        client = self._client(credential, self._mgmt_scope())
        out = []
        for a in self._storage_accounts(credential):
            blob = ((a.get("properties") or {}).get("primaryEndpoints") or {}).get("blob")
            containers = self._list(
                client,
                f"{self.options.management_endpoint}{a.get('id', '')}/blobServices/"
                f"default/containers?api-version={API['storage']}",
                "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                credential,
            )
            for c in containers:
                out.append(
                    BucketInfo(
                        Cloud.AZURE,
                        f"{a.get('name')}/{c.get('name')}",
                        a.get("location"),
                        f"{blob}{c.get('name')}" if blob else None,
                        {
                            "account": a.get("name", ""),
                            "container": c.get("name", ""),
                            "resource_group": _resource_group(a.get("id", "")),
                            "blob_endpoint": blob or "",
                        },
                    )
                )
        return out

    def bucket_probe(self, credential: FoundCredential, bucket: str) -> Finding:
        """Put and delete a block blob in "account/container" with an Entra token (the data-plane role
        ClickHouse's backups will need), not with an account key."""
        load_sdk(*AZURE_SDK)
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy

        account, _, container = bucket.partition("/")
        if not container:
            return Finding(
                False,
                "azure/bad-bucket-name",
                f"'{bucket}' is not account/container",
                "name the bucket as <storage-account>/<container>",
            )
        try:
            if account not in self._accounts:
                self._storage_accounts(credential)
            blob = (
                ((self._accounts.get(account) or {}).get("properties") or {}).get("primaryEndpoints") or {}
            ).get("blob") or f"https://{account}.blob.core.windows.net/"
            client: Any = PipelineClient(
                blob,
                policies=[
                    RetryPolicy(retry_total=1),
                    BearerTokenCredentialPolicy(self._credential(credential), STORAGE_SCOPE),
                ],
                transport=self._transport(),
            )
            url = f"{blob.rstrip('/')}/{quote(container)}/.hfwizard-probe/{uuid.uuid4().hex}"
            headers = {
                "x-ms-version": BLOB_API_VERSION,
                "x-ms-blob-type": "BlockBlob",
                "Content-Type": "application/octet-stream",
            }
            self._send(
                client,
                "PUT",
                url,
                "Microsoft.Storage/.../blobs/write",
                credential,
                headers,
                b"hfwizard write probe\n",
            )
        except CloudError as exc:
            return _probe_finding(exc.finding, account, container)
        try:
            self._send(
                client,
                "DELETE",
                url,
                "Microsoft.Storage/.../blobs/delete",
                credential,
                {"x-ms-version": BLOB_API_VERSION},
            )
        except CloudError as exc:
            return Finding(
                False,
                exc.finding.code,
                f"wrote a probe blob in {bucket} but could not delete it: {exc.finding.message}",
                exc.finding.remedy,
            )
        return Finding(True, "azure/bucket-writable", f"{bucket} accepts blob writes and deletes")

    # --- kubeconfig ------------------------------------------------------------------------------

    def kubeconfig_for(
        self,
        credential: FoundCredential,
        cluster: ClusterInfo,
        path: Path,
        *,
        static_token: bool = False,
        context_name: str | None = None,
        merge: bool = False,
    ) -> Path:
        """A kubeconfig for an AKS cluster, from listClusterUserCredential (server and CA).

        Entra-ID clusters get our exec plugin (`python -m hfwizard.cloud.token azure`, no kubelogin
        needed) or, with static_token, one token; local-account clusters keep the user AKS returned.
        """
        from ruamel.yaml import YAML

        if not cluster.id:
            raise CloudError(Finding(False, "azure/cluster-no-id", f"no resource id for {cluster.name}"))
        client = self._client(credential, self._mgmt_scope())
        resp = self._send(
            client,
            "POST",
            f"{self.options.management_endpoint}{cluster.id}/listClusterUserCredential"
            f"?api-version={API['aks']}",
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            credential,
        )
        configs = resp.json().get("kubeconfigs") or []
        if not configs:
            raise CloudError(
                Finding(False, "azure/no-kubeconfig", f"AKS returned no kubeconfig for {cluster.name}")
            )
        doc = YAML(typ="safe", pure=True).load(base64.b64decode(configs[0]["value"]).decode())
        kube_cluster = (doc.get("clusters") or [{}])[0].get("cluster") or {}
        server = kube_cluster.get("server") or cluster.endpoint
        if not server:
            raise CloudError(
                Finding(False, "azure/cluster-no-endpoint", f"AKS cluster {cluster.name} has no endpoint")
            )
        returned_user = (doc.get("users") or [{}])[0].get("user") or {}
        aad = (
            cluster.details.get("aad") == "true"
            or "exec" in returned_user
            or "auth-provider" in returned_user
        )
        if aad and static_token:
            token, _ = self.access_token(credential, AKS_SERVER_SCOPE)
            user: dict[str, Any] = {"token": token}
        elif aad and credential.kind == "azure-client-secret":
            # The exec plugin runs later in kubectl's process; a secret held in memory here could only
            # reach it through the kubeconfig, which never carries one.
            raise CloudError(
                Finding(
                    False,
                    "azure/secret-no-exec",
                    "a client secret held in memory cannot be handed to the kubeconfig's exec plugin",
                    "export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET and use that "
                    "credential, or ask for a static token",
                )
            )
        elif aad:
            args = ["azure", "--kind", credential.kind]
            if credential.details.get("tenant_id"):
                args += ["--tenant", credential.details["tenant_id"]]
            if self.options.authority_host:
                args += ["--authority-host", self.options.authority_host]
            if self.options.ca_bundle:
                args += ["--ca-bundle", self.options.ca_bundle]
            user = exec_user(args)
        else:
            user = returned_user
        return write_kubeconfig(
            path,
            name=context_name or cluster.name,
            server=server,
            ca_data=kube_cluster.get("certificate-authority-data"),
            user=user,
            merge=merge,
        )


# --- helpers --------------------------------------------------------------------------------------


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
