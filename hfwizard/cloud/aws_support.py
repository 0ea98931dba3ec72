"""AWS helpers without a session: config files, regions, instance sizes, and errors turned into findings."""

from __future__ import annotations

import configparser
import datetime as dt
import functools
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
    home_relative,
    load_sdk,
)

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
        return _api_error_finding(exc, credential, action, bucket, p)
    return Finding(False, "aws/error", f"{action} failed ({name})", None)



def _api_error_finding(exc: Exception, credential: FoundCredential, action: str, bucket: str | None,
                       p: str) -> Finding:
    """An error AWS answered with (a ClientError): its code says what to fix. `p` is " --profile NAME"."""
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


def _replication_group(g: dict[str, Any], by_id: dict[str, Any], region: str) -> CacheInfo:
    """One ElastiCache replication group (its shards, replicas and endpoint) as a CacheInfo.

    Cluster mode is taken from several signals, not ClusterEnabled alone: a configuration endpoint,
    more than one node group, or ClusterMode "enabled"/"compatible" all mean cluster mode.
    """
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
    return CacheInfo(
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


def _cache_cluster(c: dict[str, Any], region: str) -> CacheInfo:
    """One standalone Redis/Valkey cache cluster (no replication group) as a CacheInfo."""
    nodes = [n["Endpoint"] for n in c.get("CacheNodes") or [] if n.get("Endpoint")]
    return CacheInfo(
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
