"""AWS discovery end to end against moto in server mode on loopback."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import pytest

from hfwizard.cloud import provider_for
from hfwizard.cloud.aws import AwsOptions, AwsProvider
from hfwizard.cloud.base import Cloud, CloudError, CloudProvider, FoundCredential
from tests.fixtures.cloud import CANARY

pytestmark = pytest.mark.usefixtures("no_egress")


def write_aws_files(home: Path) -> None:
    aws = home / ".aws"
    aws.mkdir(parents=True, exist_ok=True)
    (aws / "credentials").write_text(
        f"[static]\naws_access_key_id = AKIAEXAMPLESTATIC01\naws_secret_access_key = {CANARY}\n"
    )
    (aws / "config").write_text(
        "[profile static]\nregion = us-east-1\n\n"
        "[profile prod]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n"
        "region = us-east-1\n\n"
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n"
        "sso_registration_scopes = sso:account:access\n\n"
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/hf-deployer\nsource_profile = static\n"
        "region = us-east-1\n\n"
        "[profile moon]\naws_access_key_id = AKIAEXAMPLEMOON0001\n"
        f"aws_secret_access_key = {CANARY}\nregion = us-moon-1\n"
    )


@pytest.fixture
def aws(cloud_env: Path, moto_url: str) -> AwsProvider:
    write_aws_files(cloud_env)
    return AwsProvider(AwsOptions(endpoint_url=moto_url, timeout_s=5))


def by_name(found: list[FoundCredential]) -> dict[str, FoundCredential]:
    return {c.name: c for c in found}


def test_profiles_and_environment_are_found(aws: AwsProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEENV00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    found = by_name(aws.discover_credentials())
    assert isinstance(aws, CloudProvider)
    assert found["static"].kind == "aws-profile"
    assert found["static"].source.endswith("[profile static]")
    assert found["static"].details["access_key_id"] == "…IC01"
    assert found["prod"].kind == "aws-sso"
    assert found["prod"].details["sso_start_url"] == "https://corp.awsapps.com/start"
    assert found["deploy"].kind == "aws-assume-role"
    assert found["deploy"].details["role_arn"].endswith("role/hf-deployer")
    assert found["environment"].kind == "aws-env"
    assert CANARY not in repr(list(found.values()))


def test_static_profile_and_role_assumption_validate(aws: AwsProvider) -> None:
    found = by_name(aws.discover_credentials())
    static = aws.validate(found["static"])
    assert static.ok, static.findings
    assert static.identity and static.identity.account == "123456789012"
    # The assume-role profile goes through botocore's AssumeRole provider, pinned to moto as well.
    deploy = aws.validate(found["deploy"])
    assert deploy.ok, deploy.findings
    assert deploy.identity and "assumed-role/hf-deployer" in deploy.identity.principal


def test_environment_credentials_validate(aws: AwsProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEENV00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    result = aws.validate(by_name(aws.discover_credentials())["environment"])
    assert result.ok and result.identity and result.identity.details["region"] == "eu-west-1"


def test_expired_sso_and_bad_region_give_specific_findings(aws: AwsProvider) -> None:
    found = by_name(aws.discover_credentials())
    sso = aws.validate(found["prod"])
    assert not sso.ok
    assert sso.findings[0].code == "aws/sso-login-needed"
    assert sso.findings[0].remedy == "run: aws sso login --profile prod"
    moon = aws.validate(found["moon"])
    assert moon.findings[0].code == "aws/bad-region"
    assert "us-moon-1" in moon.findings[0].message


def test_eks_rds_elasticache_s3_are_listed(aws: AwsProvider, moto_url: str) -> None:
    kw = dict(
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLESTATIC01",
        aws_secret_access_key=CANARY,
    )
    eks = boto3.client("eks", **kw)
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(
        name="hf-eks",
        version="1.32",
        roleArn=role,
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    eks.create_nodegroup(
        clusterName="hf-eks",
        nodegroupName="workers",
        nodeRole=role,
        subnets=["subnet-1"],
        instanceTypes=["m6i.2xlarge"],
        scalingConfig={"minSize": 6, "maxSize": 9, "desiredSize": 6},
    )
    boto3.client("rds", **kw).create_db_instance(
        DBInstanceIdentifier="hf-pg",
        Engine="postgres",
        EngineVersion="17.2",
        DBInstanceClass="db.m6g.xlarge",
        MasterUsername="hf",
        MasterUserPassword=CANARY,
        AllocatedStorage=100,
    )
    ec = boto3.client("elasticache", **kw)
    ec.create_cache_cluster(
        CacheClusterId="hf-redis-single",
        Engine="redis",
        EngineVersion="7.1",
        CacheNodeType="cache.r7g.large",
        NumCacheNodes=1,
    )
    ec.create_replication_group(
        ReplicationGroupId="hf-redis",
        ReplicationGroupDescription="hf",
        Engine="redis",
        EngineVersion="7.1",
        CacheNodeType="cache.r7g.large",
        NumNodeGroups=3,
        ReplicasPerNodeGroup=1,
    )
    boto3.client("s3", **kw).create_bucket(Bucket="hf-clickhouse-backups")

    cred = by_name(aws.discover_credentials())["static"]
    clusters = {c.name: c for c in aws.list_clusters(cred)}
    eks_info = clusters["hf-eks"]
    assert eks_info.version == "1.32" and eks_info.endpoint and eks_info.ca_data
    pool = eks_info.node_pools[0]
    assert (pool.instance_type, pool.cores, pool.memory_gib, pool.count) == ("m6i.2xlarge", 8, 32.0, 6)

    pg = {d.name: d for d in aws.list_postgres(cred)}["hf-pg"]
    assert (pg.version, pg.port, pg.cores, pg.memory_gib) == ("17.2", 5432, 4, 16.0)
    assert pg.endpoint and pg.endpoint.startswith("hf-pg.")

    caches = {c.name: c for c in aws.list_redis(cred)}
    single = caches["hf-redis-single"]
    assert (single.engine, single.version, single.cluster_mode, single.memory_gib) == (
        "redis",
        "7.1",
        False,
        13.07,
    )
    group = caches["hf-redis"]
    # moto says ClusterEnabled False for three node groups; the shard count still shows cluster mode.
    assert group.cluster_mode is True and group.shards == 3 and group.replicas_per_shard == 1
    assert group.endpoints and group.endpoints[0].endswith(":6379")

    assert "hf-clickhouse-backups" in {b.name for b in aws.list_buckets(cred)}
    probe = aws.bucket_probe(cred, "hf-clickhouse-backups")
    assert probe.ok, probe
    objects = boto3.client("s3", **kw).list_objects_v2(Bucket="hf-clickhouse-backups")
    assert objects.get("KeyCount", 0) == 0  # the probe cleaned up after itself
    missing = aws.bucket_probe(cred, "no-such-bucket-hf")
    assert not missing.ok and missing.code == "aws/not-found"


def test_eks_token_is_a_presigned_get_caller_identity(aws: AwsProvider) -> None:
    cred = by_name(aws.discover_credentials())["static"]
    token, _expiry = aws.eks_token(cred, "hf-eks", "us-east-1")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    raw = token.removeprefix("k8s-aws-v1.")
    url = urlparse(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Credential"].startswith("AKIAEXAMPLESTATIC01/")
    assert CANARY not in token


def test_kubeconfig_uses_the_exec_plugin(aws: AwsProvider, cloud_env: Path, moto_url: str) -> None:
    cred = by_name(aws.discover_credentials())["static"]
    boto3.client(
        "eks",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLESTATIC01",
        aws_secret_access_key=CANARY,
    ).create_cluster(
        name="hf-kube",
        version="1.32",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )
    cluster = {c.name: c for c in aws.list_clusters(cred)}["hf-kube"]
    path = aws.kubeconfig_for(cred, cluster, cloud_env / "state" / "kubeconfig")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(path.read_text())
    exec_spec = doc["users"][0]["user"]["exec"]
    assert exec_spec["args"][:5] == ["-m", "hfwizard.cloud.token", "aws", "--cluster", "hf-kube"]
    # Run the plugin as kubectl would, and check it prints a fresh ExecCredential.
    env = {**os.environ, **{e["name"]: e["value"] for e in exec_spec.get("env", [])}}
    out = subprocess.run(
        [exec_spec["command"], *exec_spec["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"kind": "ExecCredential"' in out.stdout and "k8s-aws-v1." in out.stdout
    with pytest.raises(CloudError) as refused:
        aws.kubeconfig_for(cred, cluster, cloud_env / ".kube" / "config")
    assert refused.value.finding.code == "kubeconfig/default-file"
    assert CANARY not in path.read_text()


class _Denied(BaseHTTPRequestHandler):
    """Answers every EKS call as AWS does for a principal without eks:ListClusters."""

    def do_GET(self) -> None:
        body = (
            b'{"message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: '
            b'eks:ListClusters on resource: arn:aws:eks:us-east-1:123456789012:cluster/*"}'
        )
        self.send_response(403)
        self.send_header("x-amzn-ErrorType", "AccessDeniedException")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_missing_permission_names_the_action(cloud_env: Path) -> None:
    write_aws_files(cloud_env)
    server = HTTPServer(("127.0.0.1", 0), _Denied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        provider = provider_for(
            Cloud.AWS, AwsOptions(endpoint_url=f"http://127.0.0.1:{server.server_port}", max_attempts=1)
        )
        cred = by_name(provider.discover_credentials())["static"]
        with pytest.raises(CloudError) as err:
            provider.list_clusters(cred)
    finally:
        server.shutdown()
    assert err.value.finding.code == "aws/access-denied"
    assert "eks:ListClusters" in err.value.finding.message
    assert err.value.finding.remedy and "eks:ListClusters" in err.value.finding.remedy


def test_secrets_stay_out_of_results_and_logs(
    aws: AwsProvider, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    found = aws.discover_credentials()
    results = [aws.validate(c) for c in found]
    with pytest.raises(CloudError) as err:
        aws.list_clusters(by_name(found)["moon"])
    text = repr(found) + repr(results) + str(err.value) + repr(err.value.finding)
    out, errs = capfd.readouterr()
    for where, blob in (("results", text), ("logs", caplog.text), ("stdout", out), ("stderr", errs)):
        assert CANARY not in blob, where


def test_help_does_not_import_the_sdks() -> None:
    code = (
        "import sys, hfwizard.cloud.base, hfwizard.cloud.aws, hfwizard.cloud.gcp, hfwizard.cloud.azure, "
        "hfwizard.cloud.token; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'google', 'azure', 'msal', 'requests')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_static_keys_held_in_memory(
    aws: AwsProvider, moto_url: str, cloud_env: Path, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    key_id = "AKIASTATICMEMORY0001"
    cred = aws.static_credential(key_id, CANARY, region="us-east-1")
    assert cred.kind == "aws-static" and cred.details["access_key_id"] == "…0001"
    result = aws.validate(cred)
    assert result.ok and result.identity and result.identity.account == "123456789012", result.findings
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y").create_bucket(Bucket="hf-static-keys")
    assert aws.bucket_probe(cred, "hf-static-keys").ok
    from hfwizard.cloud.base import ClusterInfo

    eks = ClusterInfo(Cloud.AWS, "hf-eks", "us-east-1", "1.32", "https://127.0.0.1:6443", None)
    with pytest.raises(CloudError) as refused:  # the exec plugin could only get the keys from a file
        aws.kubeconfig_for(cred, eks, cloud_env / "kc")
    assert refused.value.finding.code == "aws/static-keys-no-exec"
    assert key_id not in repr(cred) + str(cred) + repr(result)
    out, errs = capfd.readouterr()
    # (botocore's own DEBUG lines show the key id inside the SigV4 Credential= scope: an identifier,
    # never the secret.)
    for where, blob in (("credential", repr(cred) + str(cred)), ("results", repr(result)),
                        ("logs", caplog.text), ("stdout", out), ("stderr", errs)):
        assert CANARY not in blob, where
