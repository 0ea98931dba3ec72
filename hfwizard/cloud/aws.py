"""AWS discovery through boto3: shared-config profiles, identity, EKS, RDS PostgreSQL, ElastiCache, S3."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.cloud.aws_credentials import _AwsCredentials
from hfwizard.cloud.aws_support import (
    AWS_SDK,
    TOKEN_LIFETIME,
    TOKEN_PREFIX,
    AwsOptions,
    _cache_cluster,
    _estimate_size,
    _finding,
    _pin_endpoint,
    _region_problem,
    _replication_group,
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
    Sealed,
    Validation,
    exec_user,
    load_sdk,
    write_kubeconfig,
)

if TYPE_CHECKING:
    import boto3




class AwsProvider(_AwsCredentials):
    """AWS behind the CloudProvider interface. Calls are synchronous; run them off the UI loop."""

    cloud = Cloud.AWS

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()

    # Discovery of credentials on this machine: aws_credentials._AwsCredentials.

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
        out = [_replication_group(g, by_id, region) for g in groups if g.get("Engine", "redis") in ("redis", "valkey")]
        out += [_cache_cluster(c, region) for c in clusters
                if not c.get("ReplicationGroupId") and c.get("Engine") in ("redis", "valkey")]
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
