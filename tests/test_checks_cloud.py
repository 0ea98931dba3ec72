"""Blob store and cloud identity checks against moto in server mode on loopback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hfwizard.checks.base import Status
from hfwizard.checks.blob import check_bucket
from hfwizard.checks.cloud import CloudAccess, check_identity
from hfwizard.checks.inputs import fixed_secret, secret_getter

pytestmark = pytest.mark.usefixtures("no_egress")

KEY_ID = "AKIACANARYKEYID00001"
SECRET = "Canary-AWS-secret-7c1d0e9f-do-not-leak"


def _access(moto_url: str, **kw: object) -> CloudAccess:
    base = {"region": "us-east-1", "timeout_s": 5.0, "aws_endpoint_url": moto_url,
            "aws_access_key_id": fixed_secret(KEY_ID), "aws_secret_access_key": fixed_secret(SECRET)}
    base.update(kw)
    return CloudAccess("aws", **base)  # type: ignore[arg-type]


def _bucket(moto_url: str, name: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="y")
    s3.create_bucket(Bucket=name)


def _leftover_key_files() -> list[str]:
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith("hfwizard-aws-")]


async def test_identity_through_sts(cloud_env: Path, moto_url: str) -> None:
    before = _leftover_key_files()
    got = await check_identity(_access(moto_url))
    assert got.status is Status.PASS, got
    assert "123456789012" in got.finding
    assert SECRET not in repr(got) and KEY_ID not in repr(got)
    assert _leftover_key_files() == before  # the keys stayed in memory: no credentials file was written


async def test_identity_without_credentials_fails(cloud_env: Path, moto_url: str) -> None:
    got = await check_identity(_access(moto_url, aws_access_key_id=None, aws_secret_access_key=None))
    assert got.status is Status.FAIL and "no AWS credentials" in got.finding and got.remedy


async def test_identity_with_an_unresolvable_reference(cloud_env: Path, moto_url: str) -> None:
    got = await check_identity(_access(moto_url, aws_secret_access_key=secret_getter("env:HFW_NO_SUCH_VAR")))
    assert got.status is Status.FAIL and "HFW_NO_SUCH_VAR" in got.finding


async def test_bucket_probe_writes_and_deletes(cloud_env: Path, moto_url: str) -> None:
    import boto3

    _bucket(moto_url, "hf-backups-ok")
    got = await check_bucket(_access(moto_url), "hf-backups-ok", "s3")
    assert got.status is Status.PASS, got
    assert "s3://hf-backups-ok" in got.finding
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="y")
    assert s3.list_objects_v2(Bucket="hf-backups-ok").get("KeyCount", 0) == 0  # the probe was deleted
    assert SECRET not in repr(got)


async def test_missing_bucket_fails(cloud_env: Path, moto_url: str) -> None:
    got = await check_bucket(_access(moto_url), "hf-backups-absent", "s3")
    assert got.status is Status.FAIL and "hf-backups-absent" in got.finding


async def test_unset_bucket_fails(cloud_env: Path, moto_url: str) -> None:
    got = await check_bucket(_access(moto_url), None, "s3")
    assert got.status is Status.FAIL and "clickhouse.backup.bucket" in got.finding


async def test_unreachable_endpoint_fails(cloud_env: Path, closed_port: int) -> None:
    got = await check_identity(_access(f"http://127.0.0.1:{closed_port}", timeout_s=1.0))
    assert got.status is Status.FAIL and got.remedy


@pytest.mark.parametrize("profile_name", ["hf-test"])
async def test_named_profile(cloud_env: Path, moto_url: str, profile_name: str) -> None:
    creds = cloud_env / ".aws" / "credentials"
    creds.parent.mkdir(parents=True, exist_ok=True)
    creds.write_text(f"[{profile_name}]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    got = await check_identity(_access(moto_url, aws_access_key_id=None, aws_secret_access_key=None,
                                       aws_profile=profile_name))
    assert got.status is Status.PASS, got
