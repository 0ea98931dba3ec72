"""hfwizard.operations' answers from discovery: what a picked database, cache or bucket fills in."""

from __future__ import annotations

from types import SimpleNamespace

from hfwizard.operations import data_service_answers


def test_discovered_services_become_profile_answers() -> None:
    pg = SimpleNamespace(endpoint="db.example.internal", port=5432)
    assert data_service_answers("postgres", pg, "aws") == {"postgres.host": "db.example.internal",
                                                           "postgres.port": 5432}
    rd = SimpleNamespace(endpoints=("r1:6379", "r2:6379"), tls=True)
    assert data_service_answers("redis", rd, "gcp") == {"redis.endpoints": ["r1:6379", "r2:6379"], "redis.tls": True}
    bucket = SimpleNamespace(name="projects/_/buckets/hf-backups")
    assert data_service_answers("bucket", bucket, "gcp") == {"clickhouse.backup.bucket": "hf-backups",
                                                             "clickhouse.backup.provider": "gcs"}
    assert data_service_answers("bucket", SimpleNamespace(name="acct/hf"), "azure")["clickhouse.backup.provider"] \
        == "azure"
    assert data_service_answers("nothing", pg, "aws") == {}
