"""The services' databases on the managed PostgreSQL: create the missing ones (idempotent), and tell preflight
whether the install's user may.

Highflame's services each expect their own database (javelin_data, highflame_authn, ...), owned by the user
they connect as. `ensure_databases` is a plan step; `database_access` is what a preflight check reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfwizard.errors import Failed
from hfwizard.profile import InstallProfile

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseError(Failed):
    """A database that could not be created or inspected; the message names it and the user."""


@dataclass(frozen=True)
class DatabaseAccess:
    """What the connecting user may do about the databases the platform needs."""

    user: str
    can_create: bool
    """The user may create databases (CREATEDB or superuser)."""
    existing: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    foreign: dict[str, str] = field(default_factory=dict)
    """Existing databases owned by someone else, with their owner (the services may lack rights there)."""

    @property
    def ok(self) -> bool:
        """True when the install can go on: nothing is missing, or the user can create what is."""
        return not self.missing or self.can_create

    @property
    def finding(self) -> str:
        """One paragraph for the operator: what is wrong and what to run, or that all is well."""
        parts: list[str] = []
        if self.missing and not self.can_create:
            stmts = "; ".join(f"CREATE DATABASE {db} OWNER {self.user}" for db in self.missing)
            parts.append(f"user {self.user} may not create databases (no CREATEDB) and "
                         f"{len(self.missing)} the platform needs are missing: {', '.join(self.missing)}. "
                         f"Ask the database administrator to run `ALTER ROLE {self.user} CREATEDB` or: {stmts}")
        elif self.missing:
            parts.append(f"user {self.user} may create databases; the install will create "
                         f"{', '.join(self.missing)}")
        else:
            parts.append(f"every database the platform needs exists ({', '.join(self.existing)})")
        if self.foreign:
            owned = ", ".join(f"{db} (owner {o})" for db, o in self.foreign.items())
            parts.append(f"not owned by {self.user}: {owned}; the services need to own them or be granted "
                         "CREATE on their public schema")
        return ". ".join(parts)


def profile_conninfo(profile: InstallProfile, password: str | None) -> dict[str, Any]:
    """psycopg keyword arguments for the profile's PostgreSQL (the caller resolves the password reference)."""
    args: dict[str, Any] = {"host": profile.postgres.host, "port": profile.postgres.port,
                            "user": profile.postgres.user, "dbname": profile.postgres.database,
                            "sslmode": profile.postgres.sslmode.value, "connect_timeout": 10}
    if password is not None:
        args["password"] = password
    if profile.postgres.ca_cert:
        args["sslrootcert"] = profile.postgres.ca_cert
    return args


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a plain database name")


def _connect(conninfo: Mapping[str, Any]) -> Any:
    import psycopg  # imported here: the CLI's --help must not pay for it

    args = dict(conninfo)
    args.setdefault("connect_timeout", 10)
    target = f"{args.get('user')}@{args.get('host')}:{args.get('port', 5432)}/{args.get('dbname', '')}"
    try:
        return psycopg.connect(**args, autocommit=True)
    except psycopg.Error as exc:
        # psycopg's message names host, port and user, never the password.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise DatabaseError(f"cannot connect to PostgreSQL as {target}: {first}") from None


def database_access(conninfo: Mapping[str, Any], names: Sequence[str]) -> DatabaseAccess:
    """Inspect (never change) which of `names` exist, who owns them, and whether the user may create them."""
    _check_names(names)
    with _connect(conninfo) as conn:
        user, createdb, superuser = conn.execute(
            "SELECT current_user, rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        rows = conn.execute("SELECT d.datname, pg_get_userbyid(d.datdba) FROM pg_database d "
                            "WHERE d.datname = ANY(%s)", (list(names),)).fetchall()
    owners = dict(rows)
    existing = [n for n in names if n in owners]
    foreign = {n: owners[n] for n in existing if owners[n] != user and not superuser}
    return DatabaseAccess(user, bool(createdb or superuser), existing, [n for n in names if n not in owners],
                          foreign)


def ensure_databases(conninfo: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Create every database in `names` that does not exist, owned by the connecting user.

    Idempotent: a second run creates nothing, and one created meanwhile by someone else counts as there.
    Returns the names it created. `conninfo` is psycopg's keyword arguments (host, port, user, password,
    dbname of a database to connect to, sslmode ...).
    """
    import psycopg
    from psycopg import sql

    _check_names(names)
    created: list[str] = []
    with _connect(conninfo) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                                           (list(names),)).fetchall()}
        for name in names:
            if name in have:
                continue
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                continue  # made by someone else between our look and our create
            except psycopg.errors.InsufficientPrivilege:
                user = conn.info.user
                raise DatabaseError(f"user {user} may not create database {name} (no CREATEDB)",
                                    remedy=f"run `ALTER ROLE {user} CREATEDB`, or have the database "
                                           f"administrator run `CREATE DATABASE {name} OWNER {user}`") from None
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DatabaseError(f"creating database {name} failed: {first}") from None
            created.append(name)
    return created
