"""GCP discovery through google-auth: ADC, key files, gcloud config; GKE, Cloud SQL, Memorystore, GCS."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import logging
import os
import re
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
    Validation,
    exec_user,
    home_relative,
    load_sdk,
    mask,
    write_kubeconfig,
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


class GcpProvider:
    """GCP behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.GCP

    def __init__(self, options: GcpOptions | None = None) -> None:
        self.options = options or GcpOptions()

    # --- discovery -----------------------------------------------------------------------------

    def _gcloud_dir(self) -> Path:
        return (
            self.options.cloudsdk_config or Path(os.environ.get("CLOUDSDK_CONFIG") or "~/.config/gcloud")
        ).expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file and gcloud's active configuration.

        Reads files only: the metadata server is never probed here (off GCE it only costs a timeout).
        """
        found: list[FoundCredential] = []
        gcloud_config = self._gcloud_config()
        env_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if env_file:
            cred = self.credential_from_file(Path(env_file), "environment (GOOGLE_APPLICATION_CREDENTIALS)")
            if cred:
                found.append(cred)
        adc = self._gcloud_dir() / "application_default_credentials.json"
        if adc.is_file() and (not env_file or Path(env_file).expanduser().resolve() != adc.resolve()):
            cred = self.credential_from_file(adc, home_relative(adc))
            if cred:
                found.append(cred)
        if gcloud_config:
            name, values, path = gcloud_config
            details = {k: v for k, v in values.items() if k in ("project", "account", "region", "zone")}
            details["configuration"] = name
            if adc.is_file():
                details["file"] = str(adc)
            found.append(
                FoundCredential(
                    Cloud.GCP,
                    "gcp-gcloud-config",
                    name,
                    f"{home_relative(path)} [core]",
                    values.get("region"),
                    details,
                )
            )
        return found

    def credential_from_file(self, path: Path, source: str | None = None) -> FoundCredential | None:
        """A FoundCredential for a key or ADC file the operator names; None if it is not one."""
        path = path.expanduser()
        try:
            info = json.loads(_read_key(path))
        except (OSError, ValueError) as exc:
            log.warning("could not read %s: %s", home_relative(path), type(exc).__name__)
            return None
        if not isinstance(info, dict):
            return None
        kind_of = info.get("type")
        details: dict[str, str] = {"file": str(path), "type": str(kind_of)}
        project = info.get("project_id") or info.get("quota_project_id")
        gcloud = self._gcloud_config()
        if not project and gcloud:
            project = gcloud[1].get("project")
        if project:
            details["project"] = project
        if kind_of == "service_account":
            details["client_email"] = info.get("client_email", "")
            details["private_key_id"] = mask(info.get("private_key_id", ""))
            return FoundCredential(
                Cloud.GCP,
                "gcp-service-account",
                info.get("client_email", path.name),
                source or home_relative(path),
                None,
                details,
            )
        if kind_of in (
            "authorized_user",
            "external_account",
            "impersonated_service_account",
            "external_account_authorized_user",
        ):
            if gcloud and gcloud[1].get("account"):
                details["account"] = gcloud[1]["account"]
            return FoundCredential(
                Cloud.GCP,
                "gcp-adc",
                details.get("account", "application default"),
                source or home_relative(path),
                None,
                details,
            )
        return None

    def _gcloud_config(self) -> tuple[str, dict[str, str], Path] | None:
        root = self._gcloud_dir()
        try:
            active = (root / "active_config").read_text().strip() or "default"
        except OSError:
            active = "default"
        path = root / "configurations" / f"config_{active}"
        if not path.is_file():
            return None
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            return None
        values: dict[str, str] = {}
        for section, keys in (("core", ("project", "account")), ("compute", ("region", "zone"))):
            for key in keys:
                if parser.has_option(section, key):
                    values[key] = parser.get(section, key)
        return active, values, path

    # --- credentials and HTTP ----------------------------------------------------------------------

    def _credential_file(self, credential: FoundCredential | None) -> Path:
        if credential and credential.details.get("file"):
            return Path(credential.details["file"])
        if credential and credential.kind == "gcp-gcloud-config":
            raise CloudError(
                Finding(
                    False,
                    "gcp/no-adc",
                    f"gcloud is configured ({credential.name}) but has no Application Default Credentials",
                    "run: gcloud auth application-default login",
                )
            )
        env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return Path(env) if env else self._gcloud_dir() / "application_default_credentials.json"

    def _load(self, path: Path) -> Any:
        """google-auth credentials from a file. The secret stays inside google-auth's object."""
        load_sdk(*GCP_SDK)
        import google.auth
        from google.oauth2 import credentials as user_credentials
        from google.oauth2 import service_account

        path = path.expanduser()
        try:
            info = json.loads(_read_key(path))
        except (OSError, ValueError) as exc:
            raise CloudError(
                Finding(
                    False,
                    "gcp/bad-credentials-file",
                    f"cannot read {home_relative(path)} ({type(exc).__name__})",
                    "point at a valid key file, or run: gcloud auth application-default login",
                )
            ) from None
        if self.options.token_uri:
            info["token_uri"] = self.options.token_uri
        try:
            if info.get("type") == "service_account":
                return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            if info.get("type") == "authorized_user":
                user = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
                # from_authorized_user_info always sets Google's token endpoint; the override wins here.
                return user.with_token_uri(self.options.token_uri) if self.options.token_uri else user
            creds, _ = google.auth.load_credentials_from_dict(info, scopes=list(SCOPES))
            return creds
        except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
            raise CloudError(
                Finding(
                    False,
                    "gcp/bad-credentials-file",
                    f"{home_relative(path)} is not a usable credential ({type(exc).__name__})",
                    "create a new key, or run: gcloud auth application-default login",
                )
            ) from None

    def _request(self) -> Any:
        """A google-auth transport Request whose every call is bounded by the options' timeout."""
        load_sdk(*GCP_SDK)
        import requests
        from google.auth.transport.requests import Request

        timeout_s = self.options.timeout_s
        extra: dict[str, Any] = {"verify": self.options.ca_bundle} if self.options.ca_bundle else {}

        class BoundedRequest(Request):
            # google-auth's token refresh passes no timeout (its default is 120 s): impose ours. The CA
            # bundle goes on each call: a session-wide `verify` loses to $REQUESTS_CA_BUNDLE in requests.
            def __call__(
                self,
                url: str,
                method: str = "GET",
                body: Any = None,
                headers: Any = None,
                timeout: Any = None,
                **kwargs: Any,
            ) -> Any:
                return super().__call__(
                    url, method=method, body=body, headers=headers, timeout=timeout_s, **{**kwargs, **extra}
                )

        session = requests.Session()
        return BoundedRequest(session)

    def _refresh(self, creds: Any, credential: FoundCredential | None) -> None:
        try:
            creds.refresh(self._request())
        except Exception as exc:
            log.debug("token refresh failed: %s", type(exc).__name__)
            raise CloudError(_refresh_finding(exc, credential)) from None

    def access_token(self, credentials_file: Path | None = None) -> tuple[str, dt.datetime | None]:
        """A fresh OAuth access token and its expiry (UTC), e.g. for the GKE exec plugin."""
        creds = self._load(credentials_file or self._credential_file(None))
        self._refresh(creds, None)
        expiry = creds.expiry.replace(tzinfo=dt.UTC) if creds.expiry else None
        return str(creds.token), expiry

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


# --- helpers --------------------------------------------------------------------------------------


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


def _read_key(path: Path) -> str:
    """A key or ADC file's text, bounded: a FIFO or a device named by mistake is refused, not read."""
    from hfwizard.errors import BadInput
    from hfwizard.files import SECRET_LIMIT, read_bounded

    try:
        return read_bounded(path, what="Google credentials file", limit=SECRET_LIMIT).decode("utf-8")
    except BadInput as exc:
        raise OSError(exc.message) from None
