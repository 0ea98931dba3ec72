"""Azure discovery through azure-identity: env/CLI/managed identity; AKS, PostgreSQL, Redis, Blob storage."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hfwizard.cloud.azure_credentials import _AzureCredentials
from hfwizard.cloud.azure_support import (
    AKS_SERVER_SCOPE,
    API,
    AZURE_SDK,
    BLOB_API_VERSION,
    STORAGE_SCOPE,
    AzureOptions,
    _azure_cache,
    _estimate_vm,
    _norm,
    _probe_finding,
    _resource_group,
    log,
)
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
    Validation,
    exec_user,
    jwt_claims,
    load_sdk,
    write_kubeconfig,
)


class AzureProvider(_AzureCredentials):
    """Azure behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.AZURE

    def __init__(self, options: AzureOptions | None = None) -> None:
        self.options = options or AzureOptions()
        self._accounts: dict[str, dict[str, Any]] = {}

    # Credentials and the HTTP pipeline: azure_credentials._AzureCredentials.

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
        out: list[CacheInfo] = []
        for r in self._list(
            client,
            self._mgmt(f"/subscriptions/{sub}/providers/Microsoft.Cache/redis", "redis"),
            "Microsoft.Cache/redis/read",
            credential,
        ):
            loc = r.get("location", "")
            if region and _norm(loc) != _norm(region):
                continue
            out.append(_azure_cache(r, loc))
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
