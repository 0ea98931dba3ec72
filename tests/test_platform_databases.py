"""The services' databases on a real PostgreSQL 17.2: created once, idempotently, and a clear finding for a user
who may not create them."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from hfwizard.platform.catalog import load_catalog
from hfwizard.platform.databases import DatabaseError, database_access, ensure_databases, profile_conninfo
from hfwizard.platform.values import databases
from hfwizard.profile import InstallProfile
from tests.fixtures.servers import PG_CREATOR, PG_PASSWORD, PG_USER, PgServer
from tests.platform_support import cloud_profile

NAMES = load_catalog().databases


def _drop(server: PgServer) -> None:
    with psycopg.connect(**server.conninfo(), autocommit=True) as conn:
        for name in NAMES:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def pg(pg17: PgServer) -> Iterator[PgServer]:
    _drop(pg17)
    yield pg17
    _drop(pg17)


def test_the_platform_needs_five_databases() -> None:
    assert databases(cloud_profile("aws")) == \
        ["javelin_data", "highflame_authn", "javelin_redteam", "highflame_guardian", "highflame_discovery"]


def test_created_once_then_nothing(pg: PgServer) -> None:
    profile = InstallProfile.model_validate({"postgres": {
        "host": pg.host, "port": pg.port, "user": PG_CREATOR, "database": pg.database, "sslmode": "disable"}})
    creator = profile_conninfo(profile, PG_PASSWORD)
    assert ensure_databases(creator, NAMES) == NAMES
    assert ensure_databases(creator, NAMES) == []
    with psycopg.connect(**pg.conninfo()) as conn:
        owners = dict(conn.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                                   "WHERE datname = ANY(%s)", (NAMES,)).fetchall())
    assert owners == dict.fromkeys(NAMES, PG_CREATOR)
    access = database_access(creator, NAMES)
    assert access.ok and access.existing == NAMES and not access.missing and not access.foreign
    assert "every database the platform needs exists" in access.finding


def test_one_made_meanwhile_is_left_alone(pg: PgServer) -> None:
    with psycopg.connect(**pg.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE javelin_data")
    creator = pg.conninfo(user=PG_CREATOR, password=PG_PASSWORD)
    assert ensure_databases(creator, NAMES) == NAMES[1:]
    access = database_access(creator, NAMES)
    assert access.foreign == {"javelin_data": "postgres"}
    assert "not owned by creator: javelin_data (owner postgres)" in access.finding


def test_a_user_without_createdb_gets_a_clear_finding(pg: PgServer) -> None:
    user = pg.conninfo(user=PG_USER, password=PG_PASSWORD, dbname=pg.database)
    access = database_access(user, NAMES)
    assert not access.can_create and not access.ok and access.missing == NAMES
    assert f"user {PG_USER} may not create databases (no CREATEDB)" in access.finding
    assert f"ALTER ROLE {PG_USER} CREATEDB" in access.finding
    assert f"CREATE DATABASE highflame_discovery OWNER {PG_USER}" in access.finding
    with pytest.raises(DatabaseError) as err:
        ensure_databases(user, NAMES)
    assert "javelin_data" in str(err.value) and "CREATEDB" in str(err.value)
    assert PG_PASSWORD not in str(err.value)


def test_a_user_without_createdb_is_fine_once_the_dba_made_them(pg: PgServer) -> None:
    ensure_databases(pg.conninfo(), NAMES)
    access = database_access(pg.conninfo(user=PG_USER, password=PG_PASSWORD, dbname=pg.database), NAMES)
    assert access.ok and not access.missing and set(access.foreign) == set(NAMES)


def test_a_wrong_password_names_the_target_not_the_password(pg: PgServer) -> None:
    with pytest.raises(DatabaseError) as err:
        ensure_databases(pg.conninfo(user=PG_CREATOR, password="Canary-wrong-pw-1"), NAMES)
    assert f"{PG_CREATOR}@{pg.host}:{pg.port}" in str(err.value) and "Canary-wrong-pw-1" not in str(err.value)


def test_names_are_checked_before_any_sql() -> None:
    with pytest.raises(ValueError, match="plain database name"):
        ensure_databases({"host": "127.0.0.1"}, ['x"; DROP DATABASE postgres; --'])
