"""Blob store check: the ClickHouse backup bucket takes a probe object and lets it be deleted again."""

from __future__ import annotations

import time

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.cloud import CloudAccess, CredentialProblem, sign_in
from hfwizard.checks.threads import in_thread
from hfwizard.errors import SecretError

CHECK_ID = "blob/backup-bucket"
TITLE = "ClickHouse backup bucket writable"
_CLOUD_OF = {"s3": "aws", "gcs": "gcp", "azure": "azure"}


async def check_bucket(access: CloudAccess, bucket: str | None, provider_name: str, *,
                       account: str | None = None) -> CheckResult:
    started = time.monotonic()
    if not bucket:
        return result(CHECK_ID, TITLE, Status.FAIL, "clickhouse.backup.bucket is not set",
                      "create a bucket for ClickHouse backups and name it in clickhouse.backup.bucket",
                      started)
    # Azure's probe takes "account/container"; the profile keeps the account apart.
    target = f"{account}/{bucket}" if provider_name == "azure" and account and "/" not in bucket else bucket
    try:
        signed = await sign_in(access)
    except SecretError as exc:
        return result(CHECK_ID, TITLE, Status.FAIL, f"credentials.{access.cloud}: {exc.message}", exc.remedy,
                      started)
    except CredentialProblem as exc:
        return result(CHECK_ID, TITLE, Status.FAIL, f"cannot check {target}: {exc.message}", exc.remedy,
                      started)
    finding = await in_thread(signed.provider.bucket_probe, signed.credential, target)
    if finding.ok:
        return result(CHECK_ID, TITLE, Status.PASS, finding.message, None, started, bucket=target)
    return result(CHECK_ID, TITLE, Status.FAIL, finding.message, finding.remedy, started, bucket=target,
                  code=finding.code)


def bucket_check(access: CloudAccess | None, bucket: str | None, provider_name: str, timeout: float, *,
                 account: str | None = None, why_not: str = "") -> Check:
    async def run() -> CheckResult:
        if access is None:
            return result(CHECK_ID, TITLE, Status.FAIL,
                          f"no {provider_name} credentials to check the bucket with"
                          + (f" ({why_not})" if why_not else ""),
                          "add credentials for the backup bucket's cloud to the profile, or skip this "
                          f"check with --skip-check {CHECK_ID} and check the bucket yourself")
        return await check_bucket(access, bucket, provider_name, account=account)

    return Check(CHECK_ID, TITLE, run, timeout)


def cloud_of(provider_name: str) -> str:
    return _CLOUD_OF[provider_name]
