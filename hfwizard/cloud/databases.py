"""Finding the managed PostgreSQL a profile points at among a cloud's instances, to learn its size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hfwizard.cloud.base import DatabaseInfo, FoundCredential


def _host(text: str) -> str:
    return text.strip().lower().rstrip(".")


def match_postgres(databases: Iterable[DatabaseInfo], host: str) -> DatabaseInfo | None:
    """The instance whose endpoint is `host`. An Aurora cluster endpoint (`<cluster>.cluster-...`) names
    the cluster, not an instance: its smallest member answers for it, since a failover may land there."""
    wanted = _host(host)
    found = list(databases)
    for db in found:
        if db.endpoint and _host(db.endpoint) == wanted:
            return db
    members = [db for db in found if db.details.get("db_cluster")
               and wanted.startswith(db.details["db_cluster"].lower() + ".cluster-")]
    if members:
        return min(members, key=lambda d: (d.cores or 0, d.memory_gib or 0.0))
    return None


def find_postgres(provider: Any, credential: FoundCredential, host: str,
                  region: str | None = None) -> tuple[DatabaseInfo | None, int]:
    """The cloud's PostgreSQL instance behind `host` (RDS, Cloud SQL, Azure Database), and how many
    instances were looked through. Raises CloudError when the cloud refuses the listing."""
    databases = provider.list_postgres(credential, region=region)
    return match_postgres(databases, host), len(databases)
