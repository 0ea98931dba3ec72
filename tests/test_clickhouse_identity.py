"""The IRSA role check: trust read from IAM (moto on loopback), permissions from IAM's policy simulation.

moto 5.2 does not implement SimulatePrincipalPolicy: against moto the check must say it cannot tell;
the simulation's answer is checked against recorded responses, served by botocore's Stubber on a real
IAM client (so each response is validated against the service model)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hfwizard.checks.backup_identity import check_role, identity_write_check, simulation_verdict, trust_verdict
from hfwizard.checks.base import Status
from hfwizard.checks.cloud import CloudAccess
from hfwizard.checks.inputs import fixed_secret

pytestmark = pytest.mark.usefixtures("no_egress")

ROLE = "arn:aws:iam::123456789012:role/hf-ch-backup"
ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE0000000000000000000000000"
SUBJECT = "system:serviceaccount:highflame:clickhouse"


def _trust(sub: str, operator: str = "StringEquals") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {operator: {f"{ISSUER}:sub": sub, f"{ISSUER}:aud": "sts.amazonaws.com"}},
    }]}


def _evaluation(action: str, resource: str, decision: str, **extra: Any) -> dict[str, Any]:
    return {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision,
            "MatchedStatements": [], "MissingContextValues": [], **extra}


OBJECTS = "arn:aws:s3:::acme-hf-backups/clickhouse/*"
BUCKET = "arn:aws:s3:::acme-hf-backups"
ALLOWED = [{"EvaluationResults": [_evaluation(a, OBJECTS, "allowed") for a in
                                  ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")],
            "IsTruncated": False},
           {"EvaluationResults": [_evaluation("s3:ListBucket", BUCKET, "allowed")], "IsTruncated": False}]


def test_simulation_allowed_everywhere_passes() -> None:
    verdict = simulation_verdict(ALLOWED, ROLE, "acme-hf-backups")
    assert verdict.ok is True and "s3:PutObject" in verdict.message


def test_simulation_names_what_is_denied_and_why() -> None:
    pages = [{"EvaluationResults": [
        _evaluation("s3:PutObject", OBJECTS, "implicitDeny"),
        _evaluation("s3:GetObject", OBJECTS, "allowed"),
        _evaluation("s3:DeleteObject", OBJECTS, "explicitDeny",
                    MatchedStatements=[{"SourcePolicyId": "deny-deletes", "SourcePolicyType": "IAM Policy"}]),
        _evaluation("s3:ListBucket", BUCKET, "implicitDeny",
                    OrganizationsDecisionDetail={"AllowedByOrganizations": False}),
    ]}]
    verdict = simulation_verdict(pages, ROLE, "acme-hf-backups")
    assert verdict.ok is False
    assert verdict.message == (
        f"role {ROLE} cannot back up to s3://acme-hf-backups: "
        f"s3:PutObject on {OBJECTS}: no statement allows it; "
        f"s3:DeleteObject on {OBJECTS}: an explicit Deny (policy deny-deletes); "
        f"s3:ListBucket on {BUCKET}: an organization SCP denies it")
    assert verdict.remedy and "clickhouse.backup.roleArn" in verdict.remedy
    assert simulation_verdict([{"EvaluationResults": []}], ROLE, "b").ok is None


def test_trust_policy_must_admit_the_service_account() -> None:
    role = {"Arn": ROLE, "AssumeRolePolicyDocument": _trust(SUBJECT)}
    assert trust_verdict(role, "highflame", "clickhouse").ok is True
    assert trust_verdict(role, "other", "clickhouse").ok is False
    wildcard = {"Arn": ROLE, "AssumeRolePolicyDocument": _trust("system:serviceaccount:highflame:*", "StringLike")}
    assert trust_verdict(wildcard, "highflame", "clickhouse").ok is True
    ec2 = {"Arn": ROLE, "AssumeRolePolicyDocument": {"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}
    denied = trust_verdict(ec2, "highflame", "clickhouse")
    assert denied.ok is False and SUBJECT in denied.message and denied.remedy


def _iam(moto_url: str) -> Any:
    return boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="AKIAEXAMPLESTATIC01", aws_secret_access_key="x")


def test_against_moto_trust_is_read_and_the_missing_simulation_is_said(moto_url: str) -> None:
    iam = _iam(moto_url)
    iam.create_role(RoleName="hf-ch-backup", AssumeRolePolicyDocument=json.dumps(_trust(SUBJECT)))
    iam.create_role(RoleName="hf-ch-wrong", AssumeRolePolicyDocument=json.dumps(_trust("system:serviceaccount:x:y")))
    verdict = check_role(iam, ROLE, "acme-hf-backups", "clickhouse/", "highflame", "clickhouse")
    assert verdict.ok is None  # moto 5.2 has no SimulatePrincipalPolicy: the check cannot tell, and says so
    assert verdict.message.startswith(f"role {ROLE} trusts {SUBJECT} through {ISSUER}")
    assert "IAM did not simulate its policies" in verdict.message
    wrong = check_role(iam, ROLE.replace("hf-ch-backup", "hf-ch-wrong"), "acme-hf-backups", "", "highflame",
                       "clickhouse")
    assert wrong.ok is False and "does not let" in wrong.message
    missing = check_role(iam, ROLE.replace("hf-ch-backup", "hf-ch-none"), "b", "", "highflame", "clickhouse")
    assert missing.ok is False and missing.message.endswith("does not exist")


def test_recorded_simulation_through_a_real_iam_client() -> None:
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    role = {"Path": "/", "RoleName": "hf-ch-backup", "RoleId": "AROAEXAMPLEROLEID0001", "Arn": ROLE,
            "CreateDate": "2026-11-01T00:00:00Z", "AssumeRolePolicyDocument": json.dumps(_trust(SUBJECT))}
    with Stubber(iam) as stub:
        stub.add_response("get_role", {"Role": role}, {"RoleName": "hf-ch-backup"})
        stub.add_response("simulate_principal_policy", ALLOWED[0],
                          {"PolicySourceArn": ROLE, "ActionNames": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                           "ResourceArns": [OBJECTS]})
        stub.add_response("simulate_principal_policy", ALLOWED[1],
                          {"PolicySourceArn": ROLE, "ActionNames": ["s3:ListBucket"], "ResourceArns": [BUCKET]})
        verdict = check_role(iam, ROLE, "acme-hf-backups", "/clickhouse/", "highflame", "clickhouse")
        stub.assert_no_pending_responses()
    assert verdict.ok is True
    assert verdict.message.startswith(f"role {ROLE} trusts {SUBJECT}")


def test_the_preflight_check_skips_without_a_role_and_warns_when_aws_cannot_tell(
    moto_url: str, cloud_env: object
) -> None:
    access = CloudAccess("aws", region="us-east-1", timeout_s=5.0, aws_endpoint_url=moto_url,
                         aws_access_key_id=fixed_secret("AKIAEXAMPLESTATIC01"),
                         aws_secret_access_key=fixed_secret("canary-aws-secret-ch-01"))
    skipped = asyncio.run(identity_write_check(access, None, "b", "", "highflame", "clickhouse", 10).run())
    assert skipped.status is Status.SKIPPED
    _iam(moto_url).create_role(RoleName="hf-ch-preflight", AssumeRolePolicyDocument=json.dumps(_trust(SUBJECT)))
    role = ROLE.replace("hf-ch-backup", "hf-ch-preflight")
    warned = asyncio.run(identity_write_check(access, role, "acme-hf-backups", "clickhouse/", "highflame",
                                              "clickhouse", 10).run())
    assert warned.status is Status.WARN, warned
    assert "canary-aws-secret" not in warned.finding + (warned.remedy or "")


GSA = "ch-backup@acme-prod-123.iam.gserviceaccount.com"


def test_gcs_bucket_policy_read_for_the_google_service_account() -> None:
    from hfwizard.checks.backup_identity import gcs_bucket_verdict

    # Recorded shape of GET storage/v1/b/<bucket>/iam.
    policy = {"kind": "storage#policy", "resourceId": "projects/_/buckets/acme-hf-backups", "version": 1,
              "etag": "CAE=", "bindings": [
                  {"role": "roles/storage.legacyBucketOwner", "members": ["projectOwner:acme-prod-123"]},
                  {"role": "roles/storage.objectUser", "members": [f"serviceAccount:{GSA}"]}]}
    assert gcs_bucket_verdict(policy, GSA, "acme-hf-backups").ok is True
    creator = {"bindings": [{"role": "roles/storage.objectCreator", "members": [f"serviceAccount:{GSA}"]}]}
    verdict = gcs_bucket_verdict(creator, GSA, "acme-hf-backups")
    assert verdict.ok is False and "not read back or delete" in verdict.message
    assert verdict.remedy and "--role roles/storage.objectUser" in verdict.remedy
    nothing = gcs_bucket_verdict({"bindings": policy["bindings"][:1]}, GSA, "acme-hf-backups")
    assert nothing.ok is None and "project-level" in nothing.message
    custom = {"bindings": [{"role": "projects/acme-prod-123/roles/chBackup", "members": [f"serviceAccount:{GSA}"]}]}
    assert gcs_bucket_verdict(custom, GSA, "acme-hf-backups").ok is None


def test_gcp_workload_identity_binding_is_required() -> None:
    from hfwizard.checks.backup_identity import gcp_workload_identity_verdict

    member = "serviceAccount:acme-prod-123.svc.id.goog[highflame/clickhouse]"
    policy = {"version": 1, "etag": "BwYx", "bindings": [
        {"role": "roles/iam.workloadIdentityUser", "members": [member]}]}
    assert gcp_workload_identity_verdict(policy, GSA, "acme-prod-123", "highflame", "clickhouse").ok is True
    other = gcp_workload_identity_verdict(policy, GSA, "acme-prod-123", "platform", "clickhouse")
    assert other.ok is False
    assert other.remedy == (f"gcloud iam service-accounts add-iam-policy-binding {GSA} --role "
                            "roles/iam.workloadIdentityUser --member "
                            "\"serviceAccount:acme-prod-123.svc.id.goog[platform/clickhouse]\"")
