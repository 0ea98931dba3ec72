"""Backup identity checks: the identity ClickHouse pods use may write the backup bucket, where the cloud can tell
(AWS: IRSA trust and IAM's policy simulation; GCP: workload identity and bucket IAM bindings, read)."""

from __future__ import annotations

import fnmatch
import json
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.cloud import CloudAccess, CredentialProblem, sign_in
from hfwizard.checks.threads import in_thread
from hfwizard.errors import SecretError

CHECK_ID = "blob/backup-identity"
TITLE = "ClickHouse pods' identity can write the backup bucket"
# What clickhouse-backup does: upload, read back (restore), delete (retention), list (backup_list).
OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")
BUCKET_ACTIONS = ("s3:ListBucket",)


@dataclass(frozen=True)
class Verdict:
    """ok: True (it can), False (it cannot: message and remedy say why), None (the cloud cannot tell)."""

    ok: bool | None
    message: str
    remedy: str | None = None


def _partition(role_arn: str) -> str:
    return role_arn.split(":")[1]


def bucket_arns(role_arn: str, bucket: str, prefix: str) -> tuple[str, str]:
    """(objects under the backup path, the bucket itself) in the role's partition."""
    partition = _partition(role_arn)
    path = prefix.strip("/")
    objects = f"arn:{partition}:s3:::{bucket}/{path + '/' if path else ''}*"
    return objects, f"arn:{partition}:s3:::{bucket}"


def simulation_verdict(pages: Iterable[dict[str, Any]], role_arn: str, bucket: str) -> Verdict:
    """Read SimulatePrincipalPolicy's answer: every action must be `allowed`."""
    denied: list[str] = []
    seen = 0
    for page in pages:
        for evaluation in page.get("EvaluationResults") or []:
            seen += 1
            decision = evaluation.get("EvalDecision", "")
            if decision == "allowed":
                continue
            why = "an explicit Deny" if decision == "explicitDeny" else "no statement allows it"
            org = (evaluation.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations")
            boundary = (evaluation.get("PermissionsBoundaryDecisionDetail") or {}).get("AllowedByPermissionsBoundary")
            if org is False:
                why = "an organization SCP denies it"
            elif boundary is False:
                why = "the role's permissions boundary denies it"
            matched = [m.get("SourcePolicyId") for m in evaluation.get("MatchedStatements") or []
                       if m.get("SourcePolicyId")]
            by = f" (policy {', '.join(matched)})" if matched and decision == "explicitDeny" else ""
            denied.append(f"{evaluation.get('EvalActionName')} on {evaluation.get('EvalResourceName')}: "
                          f"{why}{by}")
    if not seen:
        return Verdict(None, f"IAM's policy simulation for {role_arn} returned no results")
    if denied:
        return Verdict(False, f"role {role_arn} cannot back up to s3://{bucket}: " + "; ".join(denied),
                       f"grant the role {', '.join(OBJECT_ACTIONS + BUCKET_ACTIONS)} on s3://{bucket} "
                       "(and remove any Deny that matches), or name another role in clickhouse.backup.roleArn")
    return Verdict(True, f"role {role_arn} may {', '.join(OBJECT_ACTIONS + BUCKET_ACTIONS)} on s3://{bucket} "
                         "(its own policies, boundary and SCPs, as IAM simulates them)")


def _trust_document(role: dict[str, Any]) -> dict[str, Any]:
    doc = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(doc, str):  # IAM's raw API answers URL-encoded JSON; boto3 usually decodes it
        doc = json.loads(urllib.parse.unquote(doc))
    return doc


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _sub_matches(condition: dict[str, Any], subject: str) -> bool | None:
    """Whether a statement's conditions admit `subject` as the token's `sub`; None: no sub condition."""
    verdict: bool | None = None
    for operator, pairs in condition.items():
        for key, values in (pairs or {}).items():
            if not key.endswith(":sub"):
                continue
            wanted = _as_list(values)
            if operator == "StringEquals":
                verdict = subject in wanted
            elif operator == "StringLike":
                verdict = any(fnmatch.fnmatchcase(subject, w) for w in wanted)
            if verdict is False:
                return False
    return verdict


def trust_verdict(role: dict[str, Any], namespace: str, service_account: str) -> Verdict:
    """The role's trust policy must let the pods' ServiceAccount in through a cluster's OIDC provider."""
    arn = role.get("Arn", role.get("RoleName", "the role"))
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    for statement in _as_list(_trust_document(role).get("Statement")):
        actions = _as_list(statement.get("Action"))
        federated = _as_list((statement.get("Principal") or {}).get("Federated"))
        if statement.get("Effect") != "Allow" or "sts:AssumeRoleWithWebIdentity" not in actions:
            continue
        if not any(":oidc-provider/" in f for f in federated):
            continue
        admitted = _sub_matches(statement.get("Condition") or {}, subject)
        if admitted is False:
            continue
        note = "" if admitted else " (no sub condition: any ServiceAccount of the cluster may assume it)"
        return Verdict(True, f"role {arn} trusts {subject} through {federated[0].split('/', 1)[-1]}{note}")
    return Verdict(False, f"role {arn} does not let {subject} assume it with a web identity (IRSA)",
                   f"add a trust statement: Principal Federated <the cluster's OIDC provider>, "
                   f"Action sts:AssumeRoleWithWebIdentity, Condition StringEquals <issuer>:sub {subject}")


def check_role(iam: Any, role_arn: str, bucket: str, prefix: str, namespace: str,
               service_account: str) -> Verdict:
    """Trust first (get_role), then permissions (SimulatePrincipalPolicy); blocking boto3 calls."""
    name = role_arn.rsplit("/", 1)[-1]
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        if code == "NoSuchEntity":
            return Verdict(False, f"role {role_arn} does not exist",
                           "create it, or fix clickhouse.backup.roleArn")
        return Verdict(None, f"cannot read role {role_arn}: {code}", "allow the installer iam:GetRole on it")
    trust = trust_verdict(role, namespace, service_account)
    if trust.ok is False:
        return trust
    objects, bucket_arn = bucket_arns(role_arn, bucket, prefix)
    try:
        paginator = iam.get_paginator("simulate_principal_policy")
        pages = [*paginator.paginate(PolicySourceArn=role_arn, ActionNames=list(OBJECT_ACTIONS),
                                     ResourceArns=[objects]),
                 *paginator.paginate(PolicySourceArn=role_arn, ActionNames=list(BUCKET_ACTIONS),
                                     ResourceArns=[bucket_arn])]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return Verdict(None, f"{trust.message}; IAM did not simulate its policies ({code})",
                       "allow the installer iam:SimulatePrincipalPolicy to have this checked before install")
    allowed = simulation_verdict(pages, role_arn, bucket)
    return Verdict(allowed.ok, f"{trust.message}; {allowed.message}" if allowed.ok else allowed.message,
                   allowed.remedy)


def identity_write_check(access: CloudAccess | None, role_arn: str | None, bucket: str | None, prefix: str,
                         namespace: str, service_account: str, timeout: float) -> Check:
    """The preflight check: SKIPPED without an IRSA role, WARN when AWS cannot tell."""
    async def run() -> CheckResult:
        started = time.monotonic()
        if not role_arn or not bucket:
            return result(CHECK_ID, TITLE, Status.SKIPPED, "no IRSA role (clickhouse.backup.roleArn) to check",
                          None, started)
        if access is None or access.cloud != "aws":
            return result(CHECK_ID, TITLE, Status.SKIPPED, "no AWS credentials to ask IAM with", None, started)
        try:
            signed = await sign_in(access)
        except (SecretError, CredentialProblem) as exc:
            return result(CHECK_ID, TITLE, Status.WARN, f"cannot check role {role_arn}: {exc.message}",
                          exc.remedy, started)
        provider, credential = signed.provider, signed.credential
        iam = await in_thread(lambda: provider._client(provider._session(credential, access.region), "iam"))
        verdict = await in_thread(check_role, iam, role_arn, bucket, prefix, namespace, service_account)
        status = Status.PASS if verdict.ok else Status.FAIL if verdict.ok is False else Status.WARN
        return result(CHECK_ID, TITLE, status, verdict.message, verdict.remedy, started, role=role_arn)

    return Check(CHECK_ID, TITLE, run, timeout)


# ---- GCP: read from IAM policies (no simulation API for another principal) ---------------------

# Predefined roles that let clickhouse-backup upload, read back, list and delete objects.
_GCS_ENOUGH = {"roles/storage.admin", "roles/storage.objectAdmin", "roles/storage.objectUser"}
_GCS_WRITE_ONLY = {"roles/storage.objectCreator", "roles/storage.legacyBucketWriter"}


def gcs_bucket_verdict(policy: dict[str, Any], gsa: str, bucket: str) -> Verdict:
    """A bucket's IAM policy (storage/v1 b/<bucket>/iam) read for the pods' Google service account."""
    member = f"serviceAccount:{gsa}"
    roles = {b.get("role", "") for b in policy.get("bindings") or [] if member in (b.get("members") or [])}
    if roles & _GCS_ENOUGH:
        return Verdict(True, f"{gsa} holds {', '.join(sorted(roles & _GCS_ENOUGH))} on gs://{bucket}")
    grant = (f"gcloud storage buckets add-iam-policy-binding gs://{bucket} --member {member} "
             "--role roles/storage.objectUser")
    if roles & _GCS_WRITE_ONLY:
        return Verdict(False, f"{gsa} may write gs://{bucket} but not read back or delete "
                              f"({', '.join(sorted(roles))}): retention and restores would fail", grant)
    custom = sorted(r for r in roles if not r.startswith("roles/"))
    if custom:
        return Verdict(None, f"{gsa} holds custom roles on gs://{bucket} ({', '.join(custom)}); "
                             "their permissions are not read here")
    # Project-level grants do not show on the bucket: absence here is not proof.
    return Verdict(None, f"no bucket-level role for {gsa} on gs://{bucket}; a project-level grant may "
                         "still allow it", grant)


def gcp_workload_identity_verdict(policy: dict[str, Any], gsa: str, project: str, namespace: str,
                                  service_account: str) -> Verdict:
    """The Google service account's own IAM policy must let the pods' ServiceAccount act as it."""
    member = f"serviceAccount:{project}.svc.id.goog[{namespace}/{service_account}]"
    for binding in policy.get("bindings") or []:
        if binding.get("role") == "roles/iam.workloadIdentityUser" and member in (binding.get("members") or []):
            return Verdict(True, f"{member} may act as {gsa} (workload identity)")
    return Verdict(False, f"{member} may not act as {gsa}: no roles/iam.workloadIdentityUser binding",
                   f"gcloud iam service-accounts add-iam-policy-binding {gsa} "
                   f"--role roles/iam.workloadIdentityUser --member \"{member}\"")
