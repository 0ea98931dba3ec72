"""AWS discovery through boto3: shared-config profiles, identity, EKS, RDS PostgreSQL, ElastiCache, S3."""

from __future__ import annotations

import base64
import configparser
import datetime as dt
import functools
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    load_sdk,
    mask,
    write_kubeconfig,
)

if TYPE_CHECKING:
    import boto3

log = logging.getLogger("hfwizard.cloud.aws")

# Imported under load_sdk's lock before first use (see there).
AWS_SDK = ("botocore.session", "botocore.config", "botocore.client", "botocore.credentials", "boto3")

TOKEN_PREFIX = "k8s-aws-v1."
# EKS accepts a presigned GetCallerIdentity URL for 15 minutes whatever X-Amz-Expires says; clients
# should refresh a minute early, as `aws eks get-token` does.
TOKEN_LIFETIME = dt.timedelta(minutes=14)

# Only when EC2 DescribeInstanceTypes cannot be called (permission, partition): vCPU, GiB.
_FALLBACK_SIZES: dict[str, tuple[int, float]] = {
    "large": (2, 0.0),
    "xlarge": (4, 0.0),
    "2xlarge": (8, 0.0),
    "4xlarge": (16, 0.0),
    "8xlarge": (32, 0.0),
    "12xlarge": (48, 0.0),
    "16xlarge": (64, 0.0),
    "24xlarge": (96, 0.0),
}
_FAMILY_GIB_PER_VCPU = {"m": 4.0, "r": 8.0, "c": 2.0, "t": 4.0, "x": 16.0}

# ElastiCache reports no memory; AWS's node-type table (GiB available to Redis) for the common types.
_CACHE_NODE_GIB: dict[str, float] = {
    "cache.t3.micro": 0.5,
    "cache.t3.small": 1.37,
    "cache.t3.medium": 3.09,
    "cache.t4g.micro": 0.5,
    "cache.t4g.small": 1.37,
    "cache.t4g.medium": 3.09,
    "cache.m6g.large": 6.38,
    "cache.m6g.xlarge": 12.93,
    "cache.m6g.2xlarge": 26.04,
    "cache.m7g.large": 6.38,
    "cache.m7g.xlarge": 12.93,
    "cache.m7g.2xlarge": 26.04,
    "cache.r6g.large": 13.07,
    "cache.r6g.xlarge": 26.32,
    "cache.r6g.2xlarge": 52.82,
    "cache.r7g.large": 13.07,
    "cache.r7g.xlarge": 26.32,
    "cache.r7g.2xlarge": 52.82,
}

_REGION_SHAPE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")


@dataclass(frozen=True)
class AwsOptions:
    """Where AWS calls go and how long they may take."""

    endpoint_url: str | None = None  # every client, including the ones boto makes for SSO/AssumeRole
    region: str | None = None  # used when the credential names none
    timeout_s: float = 10.0  # connect and read timeout of each call
    max_attempts: int = 2  # botocore "standard" retries, first try included
    config_file: Path | None = None  # else $AWS_CONFIG_FILE, else ~/.aws/config
    credentials_file: Path | None = None  # else $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials


class AwsProvider:
    """AWS behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.AWS

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()

    # --- discovery -----------------------------------------------------------------------------

    def _config_paths(self) -> tuple[Path, Path]:
        config = self.options.config_file or Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
        creds = self.options.credentials_file or Path(
            os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
        )
        return config.expanduser(), creds.expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """Profiles in the shared config and credentials files, and credentials in the environment.

        Reads files only; no network. Secret values are looked at for presence, never kept.
        """
        config_path, creds_path = self._config_paths()
        profiles: dict[str, dict[str, str]] = {}
        sources: dict[str, str] = {}
        sso_sessions: dict[str, dict[str, str]] = {}
        for path, is_config in ((config_path, True), (creds_path, False)):
            parser = _read_ini(path)
            for section in parser.sections():
                if is_config and section.startswith("sso-session "):
                    sso_sessions[section.split(None, 1)[1].strip()] = dict(parser.items(section))
                    continue
                if is_config and section.startswith("services "):
                    continue
                name = (
                    section.split(None, 1)[1].strip()
                    if is_config and section.startswith("profile ")
                    else section
                )
                profiles.setdefault(name, {}).update(parser.items(section))
                # The config file names the profile's kind better than the credentials file: keep it.
                if is_config or name not in sources:
                    sources[name] = f"{home_relative(path)} [{section}]"
        found = [
            self._describe_profile(name, keys, sources[name], sso_sessions)
            for name, keys in sorted(profiles.items())
        ]
        found.extend(self._environment_credentials())
        return found

    def _describe_profile(
        self, name: str, keys: dict[str, str], source: str, sso_sessions: dict[str, dict[str, str]]
    ) -> FoundCredential:
        details: dict[str, str] = {"profile": name}
        region = keys.get("region")
        if "sso_session" in keys or "sso_start_url" in keys:
            kind = "aws-sso"
            session = sso_sessions.get(keys.get("sso_session", ""), {})
            for key in ("sso_session", "sso_account_id", "sso_role_name"):
                if key in keys:
                    details[key] = keys[key]
            start_url = keys.get("sso_start_url") or session.get("sso_start_url")
            if start_url:
                details["sso_start_url"] = start_url
            region = region or keys.get("sso_region") or session.get("sso_region")
        elif "role_arn" in keys:
            kind = "aws-assume-role"
            details["role_arn"] = keys["role_arn"]
            for key in (
                "source_profile",
                "credential_source",
                "role_session_name",
                "external_id_set",
                "mfa_serial",
            ):
                if key in keys:
                    details[key] = keys[key]
            if "web_identity_token_file" in keys:
                details["web_identity_token_file"] = keys["web_identity_token_file"]
        elif "credential_process" in keys:
            kind = "aws-process"
            details["credential_process"] = keys["credential_process"].split()[0]
        else:
            kind = "aws-profile"
            if keys.get("aws_access_key_id"):
                details["access_key_id"] = mask(keys["aws_access_key_id"])
            details["session_token"] = "yes" if keys.get("aws_session_token") else "no"
        return FoundCredential(Cloud.AWS, kind, name, source, region, details)

    def _environment_credentials(self) -> list[FoundCredential]:
        env = os.environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        found = []
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            found.append(
                FoundCredential(
                    Cloud.AWS,
                    "aws-env",
                    "environment",
                    "environment (AWS_ACCESS_KEY_ID)",
                    region,
                    {
                        "access_key_id": mask(env["AWS_ACCESS_KEY_ID"]),
                        "session_token": "yes" if env.get("AWS_SESSION_TOKEN") else "no",
                    },
                )
            )
        if env.get("AWS_ROLE_ARN") and env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            found.append(
                FoundCredential(
                    Cloud.AWS,
                    "aws-web-identity",
                    "web identity",
                    "environment (AWS_WEB_IDENTITY_TOKEN_FILE)",
                    region,
                    {"role_arn": env["AWS_ROLE_ARN"]},
                )
            )
        return found

    def static_credential(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        *,
        name: str = "static keys",
        source: str = "given keys",
        region: str | None = None,
    ) -> FoundCredential:
        """An "aws-static" credential: keys already in hand (resolved from the profile's references),
        kept in memory only. Nothing goes to a credentials file or the process environment, which other
        threads share."""
        keys = {"access_key_id": access_key_id.strip(), "secret_access_key": secret_access_key.strip()}
        if session_token:
            keys["session_token"] = session_token.strip()
        return FoundCredential(
            Cloud.AWS,
            "aws-static",
            name,
            source,
            region,
            {"access_key_id": mask(keys["access_key_id"]), "session_token": "yes" if session_token else "no"},
            Sealed(**keys),
        )

    # --- sessions and clients --------------------------------------------------------------------

    def _session(self, credential: FoundCredential, region: str | None = None) -> boto3.Session:
        load_sdk(*AWS_SDK)
        import boto3
        import botocore.session

        static = credential.kind == "aws-static"
        bs = botocore.session.Session(profile=None if static else credential.details.get("profile"))
        config_path, creds_path = self._config_paths()
        bs.set_config_variable("config_file", str(config_path))
        bs.set_config_variable("credentials_file", str(creds_path))
        if credential.kind == "aws-env":
            env = os.environ
            bs.set_credentials(
                env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
            )
        elif static:
            sealed = credential.sealed or Sealed()
            bs.set_credentials(
                sealed.reveal("access_key_id"),
                sealed.reveal("secret_access_key"),
                sealed.reveal("session_token"),
            )
        if self.options.endpoint_url:
            _pin_endpoint(bs, self.options.endpoint_url)
        return boto3.Session(botocore_session=bs, region_name=self._region(credential, region))

    def _region(self, credential: FoundCredential, region: str | None) -> str | None:
        return region or credential.region or self.options.region

    def _client(self, session: boto3.Session, service: str) -> Any:
        load_sdk(*AWS_SDK)
        from botocore.config import Config

        config = Config(
            connect_timeout=self.options.timeout_s,
            read_timeout=self.options.timeout_s,
            retries={"max_attempts": self.options.max_attempts, "mode": "standard"},
        )
        return session.client(service, config=config, endpoint_url=self.options.endpoint_url)

    def _require_region(self, credential: FoundCredential, region: str | None) -> str:
        chosen = self._region(credential, region)
        problem = _region_problem(chosen, credential)
        if problem:
            raise CloudError(problem)
        assert chosen is not None
        return chosen

    # --- validation ------------------------------------------------------------------------------

    def validate(self, credential: FoundCredential) -> Validation:
        """STS GetCallerIdentity with this credential; problems come back as specific findings."""
        region = self._region(credential, None)
        problem = _region_problem(region, credential)
        if problem:
            return Validation(credential, None, (problem,))
        try:
            sts = self._client(self._session(credential, region), "sts")
            who = sts.get_caller_identity()
        except Exception as exc:  # every failure becomes a finding; nothing here may crash a screen
            return Validation(credential, None, (_finding(exc, credential, region, "sts:GetCallerIdentity"),))
        identity = Identity(
            Cloud.AWS,
            who["Account"],
            who["Arn"],
            None,
            {"user_id": who.get("UserId", ""), "region": region or ""},
        )
        log.debug("aws credential %s is %s", credential.name, identity.principal)
        return Validation(
            credential,
            identity,
            (Finding(True, "aws/identity", f"signed in as {who['Arn']} in account {who['Account']}"),),
        )

    def _call(
        self, credential: FoundCredential, region: str | None, action: str, fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return fn(*args, **kwargs)
        except CloudError:
            raise
        except Exception as exc:
            raise CloudError(_finding(exc, credential, region, action)) from None

    def _pages(
        self,
        client: Any,
        op: str,
        key: str,
        credential: FoundCredential,
        region: str,
        action: str,
        **kwargs: Any,
    ) -> list[Any]:
        def collect() -> list[Any]:
            out: list[Any] = []
            for page in client.get_paginator(op).paginate(**kwargs):
                out.extend(page.get(key, []))
            return out

        return list(self._call(credential, region, action, collect))

    # --- EKS -------------------------------------------------------------------------------------

    def list_clusters(self, credential: FoundCredential, *, region: str | None = None) -> list[ClusterInfo]:
        region = self._require_region(credential, region)
        session = self._session(credential, region)
        eks = self._client(session, "eks")
        names = self._pages(eks, "list_clusters", "clusters", credential, region, "eks:ListClusters")
        raw: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for name in names:
            cluster = self._call(credential, region, "eks:DescribeCluster", eks.describe_cluster, name=name)[
                "cluster"
            ]
            groups = self._pages(
                eks,
                "list_nodegroups",
                "nodegroups",
                credential,
                region,
                "eks:ListNodegroups",
                clusterName=name,
            )
            described = [
                self._call(
                    credential,
                    region,
                    "eks:DescribeNodegroup",
                    eks.describe_nodegroup,
                    clusterName=name,
                    nodegroupName=g,
                )["nodegroup"]
                for g in groups
            ]
            raw.append((cluster, described))
        types = {t for _, groups in raw for g in groups for t in (g.get("instanceTypes") or [])}
        sizes = self._instance_sizes(session, types)
        clusters = []
        for cluster, groups in raw:
            pools = []
            for g in groups:
                itype = (g.get("instanceTypes") or [None])[0]
                cores, mem = sizes.get(itype, (None, None)) if itype else (None, None)
                scaling = g.get("scalingConfig") or {}
                pools.append(
                    NodePool(
                        g["nodegroupName"],
                        itype,
                        cores,
                        mem,
                        scaling.get("desiredSize"),
                        scaling.get("minSize"),
                        scaling.get("maxSize"),
                    )
                )
            clusters.append(
                ClusterInfo(
                    Cloud.AWS,
                    cluster["name"],
                    region,
                    cluster.get("version"),
                    cluster.get("endpoint"),
                    (cluster.get("certificateAuthority") or {}).get("data"),
                    tuple(pools),
                    cluster.get("status"),
                    cluster.get("arn"),
                    {"platform_version": cluster.get("platformVersion", "")},
                )
            )
        return clusters

    def _instance_sizes(
        self, session: boto3.Session, types: set[str]
    ) -> dict[str, tuple[int | None, float | None]]:
        """vCPUs and GiB per EC2 instance type, from DescribeInstanceTypes; a rough table if that fails."""
        sizes: dict[str, tuple[int | None, float | None]] = {}
        wanted = sorted(t for t in types if t)
        if not wanted:
            return sizes
        try:
            ec2 = self._client(session, "ec2")
            for start in range(0, len(wanted), 100):  # the API takes at most 100 names per call
                for item in ec2.describe_instance_types(InstanceTypes=wanted[start : start + 100])[
                    "InstanceTypes"
                ]:
                    sizes[item["InstanceType"]] = (
                        item["VCpuInfo"]["DefaultVCpus"],
                        round(item["MemoryInfo"]["SizeInMiB"] / 1024, 2),
                    )
        except Exception as exc:
            log.info("EC2 DescribeInstanceTypes failed (%s); sizes estimated from names", type(exc).__name__)
        for t in wanted:
            if t not in sizes:
                sizes[t] = _estimate_size(t)
        return sizes

    # --- RDS -------------------------------------------------------------------------------------

    def list_postgres(self, credential: FoundCredential, *, region: str | None = None) -> list[DatabaseInfo]:
        region = self._require_region(credential, region)
        session = self._session(credential, region)
        rds = self._client(session, "rds")
        instances = [
            i
            for i in self._pages(
                rds, "describe_db_instances", "DBInstances", credential, region, "rds:DescribeDBInstances"
            )
            if i.get("Engine") in ("postgres", "aurora-postgresql")
        ]
        # RDS classes mirror EC2 types (db.m6g.xlarge ~ m6g.xlarge), so one EC2 lookup sizes them all.
        ec2_types = {i["DBInstanceClass"].removeprefix("db.") for i in instances if i.get("DBInstanceClass")}
        ec2_types.discard("serverless")
        sizes = self._instance_sizes(session, ec2_types)
        out = []
        for i in instances:
            cls = i.get("DBInstanceClass")
            cores, mem = sizes.get(cls.removeprefix("db."), (None, None)) if cls else (None, None)
            endpoint = i.get("Endpoint") or {}
            details = {"multi_az": str(i.get("MultiAZ", False)).lower()}
            if i.get("DBClusterIdentifier"):
                details["db_cluster"] = i["DBClusterIdentifier"]
            out.append(
                DatabaseInfo(
                    Cloud.AWS,
                    i["DBInstanceIdentifier"],
                    "postgres",
                    i.get("EngineVersion"),
                    endpoint.get("Address"),
                    endpoint.get("Port"),
                    region,
                    cls,
                    cores,
                    mem,
                    i.get("DBInstanceStatus"),
                    i.get("DBInstanceArn"),
                    details,
                )
            )
        return out

    # --- ElastiCache -----------------------------------------------------------------------------

    def list_redis(self, credential: FoundCredential, *, region: str | None = None) -> list[CacheInfo]:
        """Replication groups (each with its shards) and standalone Redis/Valkey cache clusters.

        Cluster mode is taken from several signals, not ClusterEnabled alone: a configuration endpoint,
        more than one node group, or ClusterMode "enabled"/"compatible" all mean cluster mode.
        """
        region = self._require_region(credential, region)
        ec = self._client(self._session(credential, region), "elasticache")
        clusters = self._pages(
            ec,
            "describe_cache_clusters",
            "CacheClusters",
            credential,
            region,
            "elasticache:DescribeCacheClusters",
            ShowCacheNodeInfo=True,
        )
        groups = self._pages(
            ec,
            "describe_replication_groups",
            "ReplicationGroups",
            credential,
            region,
            "elasticache:DescribeReplicationGroups",
        )
        by_id = {c["CacheClusterId"]: c for c in clusters}
        out: list[CacheInfo] = []
        for g in groups:
            if g.get("Engine", "redis") not in ("redis", "valkey"):
                continue
            node_groups = g.get("NodeGroups") or []
            config_ep = g.get("ConfigurationEndpoint")
            cluster_mode = (
                bool(g.get("ClusterEnabled"))
                or bool(config_ep)
                or len(node_groups) > 1
                or g.get("ClusterMode") in ("enabled", "compatible")
            )
            if config_ep:
                endpoints: tuple[str, ...] = (f"{config_ep['Address']}:{config_ep['Port']}",)
                port = config_ep.get("Port")
            else:
                eps = {
                    f"{ng['PrimaryEndpoint']['Address']}:{ng['PrimaryEndpoint']['Port']}"
                    for ng in node_groups
                    if ng.get("PrimaryEndpoint")
                }
                endpoints = tuple(sorted(eps))
                port = next(
                    (ng["PrimaryEndpoint"]["Port"] for ng in node_groups if ng.get("PrimaryEndpoint")), None
                )
            members = [by_id[m] for m in g.get("MemberClusters") or [] if m in by_id]
            version = next((m.get("EngineVersion") for m in members if m.get("EngineVersion")), None)
            node_type = g.get("CacheNodeType") or next((m.get("CacheNodeType") for m in members), None)
            replicas = max((len(ng.get("NodeGroupMembers") or []) - 1 for ng in node_groups), default=None)
            out.append(
                CacheInfo(
                    Cloud.AWS,
                    g["ReplicationGroupId"],
                    g.get("Engine", "redis"),
                    version,
                    endpoints,
                    port,
                    cluster_mode,
                    node_type,
                    _cache_memory(node_type),
                    len(node_groups) or None,
                    replicas,
                    g.get("TransitEncryptionEnabled"),
                    region,
                    g.get("Status"),
                    g.get("ARN"),
                    {"kind": "replication-group", "auth_token": str(bool(g.get("AuthTokenEnabled"))).lower()},
                )
            )
        for c in clusters:
            if c.get("ReplicationGroupId") or c.get("Engine") not in ("redis", "valkey"):
                continue
            nodes = [n["Endpoint"] for n in c.get("CacheNodes") or [] if n.get("Endpoint")]
            out.append(
                CacheInfo(
                    Cloud.AWS,
                    c["CacheClusterId"],
                    c["Engine"],
                    c.get("EngineVersion"),
                    tuple(f"{e['Address']}:{e['Port']}" for e in nodes),
                    nodes[0]["Port"] if nodes else None,
                    False,
                    c.get("CacheNodeType"),
                    _cache_memory(c.get("CacheNodeType")),
                    1,
                    0,
                    c.get("TransitEncryptionEnabled"),
                    region,
                    c.get("CacheClusterStatus"),
                    c.get("ARN"),
                    {"kind": "cache-cluster"},
                )
            )
        return out

    # --- S3 --------------------------------------------------------------------------------------

    def list_buckets(self, credential: FoundCredential) -> list[BucketInfo]:
        region = self._require_region(credential, None)
        s3 = self._client(self._session(credential, region), "s3")
        buckets = self._call(credential, region, "s3:ListAllMyBuckets", s3.list_buckets).get("Buckets", [])
        return [BucketInfo(Cloud.AWS, b["Name"], b.get("BucketRegion"), f"s3://{b['Name']}") for b in buckets]

    def bucket_probe(self, credential: FoundCredential, bucket: str) -> Finding:
        """Write and delete a small object, as ClickHouse backups will; the finding says what failed."""
        region = self._region(credential, None)
        key = f".hfwizard-probe/{uuid.uuid4().hex}"
        try:
            s3 = self._client(self._session(credential, region), "s3")
        except Exception as exc:
            return _finding(exc, credential, region, "s3:PutObject")
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"hfwizard write probe\n")
        except Exception as exc:
            return _finding(exc, credential, region, "s3:PutObject", bucket=bucket)
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            f = _finding(exc, credential, region, "s3:DeleteObject", bucket=bucket)
            return Finding(
                False, f.code, f"wrote s3://{bucket}/{key} but could not delete it: {f.message}", f.remedy
            )
        return Finding(True, "aws/bucket-writable", f"s3://{bucket} accepts writes and deletes")

    # --- kubeconfig ------------------------------------------------------------------------------

    def eks_token(
        self, credential: FoundCredential, cluster_name: str, region: str | None = None
    ) -> tuple[str, dt.datetime]:
        """A bearer token for EKS: a presigned STS GetCallerIdentity URL bound to the cluster's name.

        This is the aws-iam-authenticator scheme: the URL carries the signed header
        `x-k8s-aws-id: <cluster>`, expires in 60 s, and is sent as "k8s-aws-v1." + base64url (no padding).
        """
        chosen = self._require_region(credential, region)
        try:
            sts = self._client(self._session(credential, chosen), "sts")

            def bind_cluster(request: Any, **_: Any) -> None:
                request.headers["x-k8s-aws-id"] = cluster_name

            sts.meta.events.register("before-sign.sts.GetCallerIdentity", bind_cluster)
            url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
        except Exception as exc:
            raise CloudError(_finding(exc, credential, chosen, "sts:GetCallerIdentity")) from None
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        return token, dt.datetime.now(dt.UTC) + TOKEN_LIFETIME

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
        """Write a kubeconfig for an EKS cluster (0600, at `path`).

        By default its user is an exec plugin (`python -m hfwizard.cloud.token aws ...`) so the token is
        minted again whenever it lapses (an install outlives EKS's 15-minute tokens). `static_token=True`
        embeds one token instead, for a short-lived file handed to a tool that cannot run the plugin.
        """
        if not cluster.endpoint:
            raise CloudError(
                Finding(
                    False,
                    "aws/cluster-no-endpoint",
                    f"EKS cluster {cluster.name} has no endpoint yet",
                    "wait until the cluster is ACTIVE",
                )
            )
        if static_token:
            token, _ = self.eks_token(credential, cluster.name, cluster.location)
            user: dict[str, Any] = {"token": token}
        elif credential.kind == "aws-static":
            # The exec plugin runs in kubectl's process later; keys held in memory here cannot reach it
            # without being written into the kubeconfig, which never happens.
            raise CloudError(
                Finding(
                    False,
                    "aws/static-keys-no-exec",
                    "static keys held in memory cannot be handed to the kubeconfig's exec plugin",
                    "use a named profile (aws configure --profile NAME), or ask for a static token",
                )
            )
        else:
            args = ["aws", "--cluster", cluster.name, "--region", cluster.location]
            if credential.details.get("profile"):
                args += ["--profile", credential.details["profile"]]
            if self.options.endpoint_url:
                args += ["--endpoint-url", self.options.endpoint_url]
            env = {}
            config_path, creds_path = self._config_paths()
            if self.options.config_file:
                env["AWS_CONFIG_FILE"] = str(config_path)
            if self.options.credentials_file:
                env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds_path)
            user = exec_user(args, env)
        return write_kubeconfig(
            path,
            name=context_name or cluster.id or cluster.name,
            server=cluster.endpoint,
            ca_data=cluster.ca_data,
            user=user,
            merge=merge,
        )


# --- helpers --------------------------------------------------------------------------------------


def _read_ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError) as exc:
        log.warning("could not read %s: %s", home_relative(path), type(exc).__name__)
    return parser


def _pin_endpoint(bs: Any, endpoint_url: str) -> None:
    """Send every client this session makes to `endpoint_url`, including the STS and SSO clients that
    botocore's credential providers create for themselves (they call session.create_client)."""
    original = bs.create_client

    def create_client(service_name: str, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("endpoint_url"):
            kwargs["endpoint_url"] = endpoint_url
        return original(service_name, *args, **kwargs)

    bs.create_client = create_client


def _region_problem(region: str | None, credential: FoundCredential) -> Finding | None:
    profile = credential.details.get("profile")
    where = f" --profile {profile}" if profile else ""
    if not region:
        return Finding(
            False,
            "aws/no-region",
            f"no region set for {credential.name}",
            f"run: aws configure set region <region>{where} (or choose a region)",
        )
    if region in _known_regions():
        return None
    newer = " (if it is a region newer than this boto3, upgrade boto3)" if _REGION_SHAPE.match(region) else ""
    return Finding(
        False,
        "aws/bad-region",
        f"'{region}' is not an AWS region{newer}",
        f"run: aws configure set region <your cluster's region>{where}",
    )


@functools.cache
def _known_regions() -> frozenset[str]:
    """Every region botocore's bundled endpoint data names, in every partition (offline)."""
    load_sdk(*AWS_SDK)
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        r for p in session.get_available_partitions() for r in session.get_available_regions("ec2", p)
    )


def _estimate_size(instance_type: str) -> tuple[int | None, float | None]:
    family, _, size = instance_type.partition(".")
    base = _FALLBACK_SIZES.get(size)
    if base is None:
        return None, None
    cores = base[0]
    per_vcpu = _FAMILY_GIB_PER_VCPU.get(family[:1])
    return cores, (cores * per_vcpu if per_vcpu else None)


def _cache_memory(node_type: str | None) -> float | None:
    if not node_type:
        return None
    if node_type in _CACHE_NODE_GIB:
        return _CACHE_NODE_GIB[node_type]
    return _estimate_size(node_type.removeprefix("cache."))[1]


_SSO_ERRORS = (
    "SSOTokenLoadError",
    "UnauthorizedSSOTokenError",
    "TokenRetrievalError",
    "SSOError",
    "InvalidSSOConfigError",
)
_DENIED = (
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedAccess",
)
_EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired")


def _finding(
    exc: Exception, credential: FoundCredential, region: str | None, action: str, bucket: str | None = None
) -> Finding:
    """Turn a boto/botocore exception into a finding that says what to run. Never quotes secrets:
    botocore's messages name profiles, ARNs and URLs, and AWS error messages never echo a key."""
    name = type(exc).__name__
    profile = credential.details.get("profile")
    p = f" --profile {profile}" if profile else ""
    if name in _SSO_ERRORS:
        return Finding(
            False,
            "aws/sso-login-needed",
            f"the SSO session for {credential.name} has expired or was never started",
            f"run: aws sso login{p}",
        )
    if name == "ProfileNotFound":
        return Finding(
            False,
            "aws/profile-not-found",
            f"profile {profile} is not in the AWS config files",
            f"run: aws configure{p}",
        )
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return Finding(
            False,
            "aws/no-credentials",
            f"{credential.name} did not yield credentials ({name})",
            f"run: aws configure{p}, or check the profile's credential source",
        )
    if name == "NoRegionError":
        return Finding(False, "aws/no-region", "no region set", f"run: aws configure set region <region>{p}")
    if name in (
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "SSLError",
    ):
        return Finding(
            False,
            "aws/unreachable",
            f"could not reach AWS in region {region} ({name})",
            "check the region name, the network or VPN, and HTTPS_PROXY",
        )
    if name == "ClientError" or hasattr(exc, "response"):
        err = (getattr(exc, "response", None) or {}).get("Error", {})
        code, text = str(err.get("Code", "")), str(err.get("Message", ""))
        op = getattr(exc, "operation_name", "") or ""
        if code in _DENIED and op == "AssumeRole":
            role = credential.details.get("role_arn", "the role")
            return Finding(
                False,
                "aws/assume-role-denied",
                f"not allowed to assume {role}: {text}",
                "allow the source identity in the role's trust policy, and sts:AssumeRole in its policy",
            )
        if code in _DENIED or code == "Forbidden" or code == "403":
            what = f" on {bucket}" if bucket else ""
            return Finding(
                False,
                "aws/access-denied",
                f"permission denied for {action}{what}: {text}".rstrip(": "),
                f"grant {action} to this identity (IAM policy{', bucket policy' if bucket else ''})",
            )
        if code in _EXPIRED:
            return Finding(
                False,
                "aws/credentials-expired",
                f"the credentials of {credential.name} have expired",
                f"refresh them (aws sso login{p}, or new keys in aws configure{p})",
            )
        if code == "InvalidClientTokenId":
            return Finding(
                False,
                "aws/invalid-key",
                f"the access key of {credential.name} is not valid",
                f"create a new access key and run: aws configure{p}",
            )
        if code == "SignatureDoesNotMatch":
            return Finding(
                False,
                "aws/bad-secret",
                f"the secret key of {credential.name} does not match its key id",
                f"re-enter the secret key: aws configure{p}",
            )
        if code in ("NoSuchBucket", "404", "NotFound"):
            return Finding(
                False, "aws/not-found", f"{bucket or action}: not found", "check the name and region"
            )
        return Finding(False, "aws/error", f"{action} failed: {code} {text}".strip(), None)
    return Finding(False, "aws/error", f"{action} failed ({name})", None)
