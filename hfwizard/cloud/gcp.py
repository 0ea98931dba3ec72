"""GCP discovery through google-auth: ADC, key files, gcloud config; GKE, Cloud SQL, Memorystore, GCS."""

from __future__ import annotations

import os
import uuid
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
    Validation,
    exec_user,
    load_sdk,
    write_kubeconfig,
)
from hfwizard.cloud.gcp_credentials import _GcpCredentials
from hfwizard.cloud.gcp_support import (
    _REDIS_CLUSTER_NODE_GIB,
    GCP_SDK,
    GcpOptions,
    _estimate_machine,
    _http_finding,
    _probe_finding,
    _redis_version,
    _sql_tier,
    _sql_version,
    log,
)


class GcpProvider(_GcpCredentials):
    """GCP behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.GCP

    def __init__(self, options: GcpOptions | None = None) -> None:
        self.options = options or GcpOptions()

    # Credentials (discovery, loading, refreshing): gcp_credentials._GcpCredentials.

    # --- HTTP --------------------------------------------------------------------------------------

    def _session(self, credential: FoundCredential) -> Any:
        load_sdk(*GCP_SDK)
        from google.auth.transport.requests import AuthorizedSession

        creds = self._load(self._credential_file(credential))
        self._refresh(creds, credential)  # up front, so an auth failure is a finding, not an HTTP error
        return AuthorizedSession(creds, auth_request=self._request())

    def _get(
        self,
        session: Any,
        url: str,
        action: str,
        project: str,
        params: dict[str, str] | None = None,
        method: str = "GET",
        data: bytes | None = None,
    ) -> dict[str, Any]:
        load_sdk(*GCP_SDK)
        import requests

        try:
            extra = {"verify": self.options.ca_bundle} if self.options.ca_bundle else {}
            resp = session.request(
                method, url, params=params, data=data, timeout=self.options.timeout_s, **extra
            )
        except requests.RequestException as exc:
            raise CloudError(
                Finding(
                    False,
                    "gcp/unreachable",
                    f"could not reach {url.split('/')[2]} ({type(exc).__name__})",
                    "check the network, VPN and HTTPS_PROXY",
                )
            ) from None
        if resp.status_code >= 400:
            raise CloudError(_http_finding(resp, action, project))
        if not resp.content:
            return {}
        body = resp.json()
        return body if isinstance(body, dict) else {}

    def _list(
        self,
        session: Any,
        url: str,
        key: str,
        action: str,
        project: str,
        params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = dict(params or {})
        while True:
            body = self._get(session, url, action, project, params)
            items.extend(body.get(key) or [])
            token = body.get("nextPageToken")
            if not token:
                return items
            params["pageToken"] = token

    def _project(self, credential: FoundCredential) -> str:
        project = (
            credential.details.get("project")
            or self.options.project
            or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or os.environ.get("CLOUDSDK_CORE_PROJECT")
        )
        if not project:
            raise CloudError(
                Finding(
                    False,
                    "gcp/no-project",
                    f"no project known for {credential.name}",
                    "run: gcloud config set project <project-id> (or choose a project)",
                )
            )
        return project

    # --- validation ------------------------------------------------------------------------------

    def validate(self, credential: FoundCredential) -> Validation:
        """Refresh a token with this credential and resolve its project in Resource Manager."""
        try:
            project = self._project(credential)
            session = self._session(credential)
            body = self._get(
                session,
                f"{self.options.resourcemanager_url}/v1/projects/{project}",
                "resourcemanager.projects.get",
                project,
            )
        except CloudError as exc:
            return Validation(credential, None, (exc.finding,))
        except Exception as exc:  # nothing here may crash a screen
            return Validation(
                credential, None, (Finding(False, "gcp/error", f"validation failed ({type(exc).__name__})"),)
            )
        principal = (
            credential.details.get("client_email")
            or credential.details.get("account")
            or "application default credentials"
        )
        identity = Identity(
            Cloud.GCP,
            body.get("projectId", project),
            principal,
            None,
            {
                "project_number": str(body.get("projectNumber", "")),
                "project_name": str(body.get("name", "")),
                "state": str(body.get("lifecycleState", "")),
            },
        )
        ok = Finding(True, "gcp/identity", f"{principal} can see project {identity.account}")
        findings = [ok]
        if body.get("lifecycleState") not in (None, "ACTIVE"):
            findings.append(
                Finding(
                    False,
                    "gcp/project-inactive",
                    f"project {project} is {body['lifecycleState']}",
                    "choose an active project",
                )
            )
        return Validation(credential, identity, tuple(findings))

    # --- GKE -------------------------------------------------------------------------------------

    def list_clusters(self, credential: FoundCredential, *, region: str | None = None) -> list[ClusterInfo]:
        project = self._project(credential)
        session = self._session(credential)
        location = region or "-"
        body = self._get(
            session,
            f"{self.options.container_url}/v1/projects/{project}/locations/{location}/clusters",
            "container.clusters.list",
            project,
        )
        clusters = body.get("clusters") or []
        sizes: dict[str, tuple[int | None, float | None]] = {}
        out = []
        for c in clusters:
            cluster_zones = c.get("locations") or [c.get("location", "")]
            pools = []
            for p in c.get("nodePools") or []:
                mtype = (p.get("config") or {}).get("machineType")
                zones = p.get("locations") or cluster_zones
                if mtype and mtype not in sizes:
                    sizes[mtype] = self._machine_size(session, project, mtype, zones[0] if zones else "")
                cores, mem = sizes.get(mtype, (None, None)) if mtype else (None, None)
                auto = p.get("autoscaling") or {}
                per_zone = p.get("initialNodeCount")
                count = per_zone * len(zones) if isinstance(per_zone, int) else None
                lo, hi = auto.get("minNodeCount"), auto.get("maxNodeCount")
                pools.append(
                    NodePool(
                        p.get("name", ""),
                        mtype,
                        cores,
                        mem,
                        count,
                        lo * len(zones) if isinstance(lo, int) and auto.get("enabled") else None,
                        hi * len(zones) if isinstance(hi, int) and auto.get("enabled") else None,
                    )
                )
            endpoint = c.get("endpoint")
            out.append(
                ClusterInfo(
                    Cloud.GCP,
                    c.get("name", ""),
                    c.get("location", ""),
                    c.get("currentMasterVersion"),
                    f"https://{endpoint}" if endpoint else None,
                    (c.get("masterAuth") or {}).get("clusterCaCertificate"),
                    tuple(pools),
                    c.get("status"),
                    c.get("selfLink"),
                    {
                        "project": project,
                        "current_node_count": str(c.get("currentNodeCount", "")),
                        "autopilot": str(bool((c.get("autopilot") or {}).get("enabled"))).lower(),
                    },
                )
            )
        return out

    def _machine_size(
        self, session: Any, project: str, machine_type: str, zone: str
    ) -> tuple[int | None, float | None]:
        if zone and zone.count("-") >= 2:  # machineTypes.get wants a zone ("us-central1-a"), not a region
            try:
                body = self._get(
                    session,
                    f"{self.options.compute_url}/compute/v1/projects/{project}/zones/{zone}"
                    f"/machineTypes/{machine_type}",
                    "compute.machineTypes.get",
                    project,
                )
                if "guestCpus" in body:
                    return int(body["guestCpus"]), round(int(body.get("memoryMb", 0)) / 1024, 2)
            except CloudError as exc:
                log.info(
                    "machine type %s not resolved (%s); estimated from its name",
                    machine_type,
                    exc.finding.code,
                )
        return _estimate_machine(machine_type)

    # --- Cloud SQL -------------------------------------------------------------------------------

    def list_postgres(self, credential: FoundCredential, *, region: str | None = None) -> list[DatabaseInfo]:
        project = self._project(credential)
        session = self._session(credential)
        items = self._list(
            session,
            f"{self.options.sqladmin_url}/v1/projects/{project}/instances",
            "items",
            "cloudsql.instances.list",
            project,
        )
        out = []
        for i in items:
            if not str(i.get("databaseVersion", "")).startswith("POSTGRES") or (
                region and i.get("region") != region
            ):
                continue
            ips = {a.get("type"): a.get("ipAddress") for a in i.get("ipAddresses") or []}
            tier = (i.get("settings") or {}).get("tier")
            cores, mem = _sql_tier(tier)
            out.append(
                DatabaseInfo(
                    Cloud.GCP,
                    i.get("name", ""),
                    "postgres",
                    _sql_version(i.get("databaseInstalledVersion") or i.get("databaseVersion", "")),
                    ips.get("PRIVATE") or ips.get("PRIMARY") or i.get("dnsName"),
                    5432,
                    i.get("region"),
                    tier,
                    cores,
                    mem,
                    i.get("state"),
                    i.get("selfLink"),
                    {
                        "connection_name": i.get("connectionName", ""),
                        "database_version": i.get("databaseVersion", ""),
                        "edition": str((i.get("settings") or {}).get("edition", "")),
                    },
                )
            )
        return out

    # --- Memorystore -----------------------------------------------------------------------------

    def list_redis(self, credential: FoundCredential, *, region: str | None = None) -> list[CacheInfo]:
        """Memorystore for Redis instances (never cluster mode) and Memorystore for Redis Cluster."""
        project = self._project(credential)
        session = self._session(credential)
        location = region or "-"
        base = f"{self.options.redis_url}/v1/projects/{project}/locations/{location}"
        out = []
        for i in self._list(session, f"{base}/instances", "instances", "redis.instances.list", project):
            out.append(
                CacheInfo(
                    Cloud.GCP,
                    i.get("name", "").rsplit("/", 1)[-1],
                    "redis",
                    _redis_version(i.get("redisVersion")),
                    (f"{i.get('host')}:{i.get('port', 6379)}",) if i.get("host") else (),
                    i.get("port"),
                    False,
                    i.get("tier"),
                    float(i["memorySizeGb"]) if i.get("memorySizeGb") else None,
                    1,
                    i.get("replicaCount", 0 if i.get("tier") == "BASIC" else None),
                    i.get("transitEncryptionMode") == "SERVER_AUTHENTICATION",
                    i.get("locationId"),
                    i.get("state"),
                    i.get("name"),
                    {"kind": "instance", "auth_enabled": str(bool(i.get("authEnabled"))).lower()},
                )
            )
        try:
            clusters = self._list(session, f"{base}/clusters", "clusters", "redis.clusters.list", project)
        except CloudError as exc:
            # Projects that never used Redis Cluster can answer 404 here while instances work.
            if exc.finding.code != "gcp/not-found":
                raise
            clusters = []
        for c in clusters:
            eps = [e for e in c.get("discoveryEndpoints") or [] if e.get("address")]
            node_type = c.get("nodeType")
            out.append(
                CacheInfo(
                    Cloud.GCP,
                    c.get("name", "").rsplit("/", 1)[-1],
                    "redis",
                    None,
                    tuple(f"{e['address']}:{e.get('port', 6379)}" for e in eps),
                    eps[0].get("port") if eps else None,
                    True,
                    node_type,
                    _REDIS_CLUSTER_NODE_GIB.get(node_type or ""),
                    c.get("shardCount"),
                    c.get("replicaCount"),
                    c.get("transitEncryptionMode") == "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION",
                    c.get("name", "").split("/")[3] if c.get("name", "").count("/") >= 3 else None,
                    c.get("state"),
                    c.get("name"),
                    {"kind": "cluster", "size_gb": str(c.get("sizeGb", ""))},
                )
            )
        return out

    # --- GCS -------------------------------------------------------------------------------------

    def list_buckets(self, credential: FoundCredential) -> list[BucketInfo]:
        project = self._project(credential)
        session = self._session(credential)
        items = self._list(
            session,
            f"{self.options.storage_url}/storage/v1/b",
            "items",
            "storage.buckets.list",
            project,
            {"project": project},
        )
        return [
            BucketInfo(
                Cloud.GCP,
                b["name"],
                b.get("location"),
                f"gs://{b['name']}",
                {"storage_class": b.get("storageClass", "")},
            )
            for b in items
        ]

    def bucket_probe(self, credential: FoundCredential, bucket: str) -> Finding:
        """Upload and delete a small object; the finding names what failed."""
        name = f".hfwizard-probe/{uuid.uuid4().hex}"
        try:
            project = self._project(credential)
            session = self._session(credential)
            self._get(
                session,
                f"{self.options.storage_url}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                "storage.objects.create",
                project,
                {"uploadType": "media", "name": name},
                method="POST",
                data=b"hfwizard write probe\n",
            )
        except CloudError as exc:
            return _probe_finding(exc.finding, bucket, credential)
        try:
            self._get(
                session,
                f"{self.options.storage_url}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}",
                "storage.objects.delete",
                project,
                method="DELETE",
            )
        except CloudError as exc:
            return Finding(
                False,
                exc.finding.code,
                f"wrote gs://{bucket}/{name} but could not delete it: {exc.finding.message}",
                exc.finding.remedy,
            )
        return Finding(True, "gcp/bucket-writable", f"gs://{bucket} accepts writes and deletes")

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
        """A kubeconfig for a GKE cluster; by default its user runs `python -m hfwizard.cloud.token gcp`
        so the (one-hour) Google token is renewed as needed, without gke-gcloud-auth-plugin."""
        if not cluster.endpoint:
            raise CloudError(
                Finding(
                    False,
                    "gcp/cluster-no-endpoint",
                    f"GKE cluster {cluster.name} has no endpoint",
                    "wait until the cluster is RUNNING",
                )
            )
        file = self._credential_file(credential)
        if static_token:
            token, _ = self.access_token(file)
            user: dict[str, Any] = {"token": token}
        else:
            args = ["gcp", "--credentials-file", str(file)]
            if self.options.token_uri:
                args += ["--token-uri", self.options.token_uri]
            if self.options.ca_bundle:
                args += ["--ca-bundle", self.options.ca_bundle]
            user = exec_user(args)
        name = (
            context_name or f"gke_{credential.details.get('project', '')}_{cluster.location}_{cluster.name}"
        )
        return write_kubeconfig(
            path, name=name, server=cluster.endpoint, ca_data=cluster.ca_data, user=user, merge=merge
        )
