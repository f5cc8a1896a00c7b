"""Per-domain databases on the local server: one role, one database and its migrations per domain.

In production each domain is its own server and functions are given that domain's DSN; locally
the domains share one server but stay apart: each database is owned by its domain's role and
only that role (and superusers) may connect to it.

| domain    | role                 | database    | local password             |
|-----------|----------------------|-------------|----------------------------|
| smartgrid | smartgrid_data       | smartgrid   | smartgrid_data-local       |
| analytics | smartgrid_analytics  | analytics   | smartgrid_analytics-local  |
| users     | smartgrid_users      | users       | smartgrid_users-local      |

A `prefix` goes in front of every role and database name (and so of the password too).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.migrations import apply_migrations

ROLES = {
    "smartgrid": "smartgrid_data",
    "analytics": "smartgrid_analytics",
    "users": "smartgrid_users",
}
# Serialises provisioning across processes; advisory locks are per database (here the admin's).
_LOCK_KEY = 0x5347_5052  # "SGPR"


def local_password(role: str) -> str:
    """The deterministic password a role gets on the local platform."""
    return f"{role}-local"


def provision(admin_dsn: str, prefix: str = "") -> dict[str, str]:
    """Create (or keep) each domain's role and database, apply its migrations; return domain -> DSN."""
    dsns: dict[str, str] = {}
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        for domain, role in ROLES.items():
            role_name, database = prefix + role, prefix + domain
            _ensure_role(admin, role_name)
            _ensure_database(admin, database, role_name)
            dsns[domain] = _domain_dsn(admin_dsn, role_name, database)
        for domain, dsn in dsns.items():
            apply_migrations(dsn, domain)
    return dsns


def drop(admin_dsn: str, prefix: str) -> None:
    """Drop the databases and roles that `provision(admin_dsn, prefix)` made, ending their sessions."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for domain, role in ROLES.items():
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(prefix + domain)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(prefix + role)))


def _ensure_role(admin: psycopg.Connection, role: str) -> None:
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    admin.execute(
        sql.SQL("{} {} LOGIN PASSWORD {}").format(verb, sql.Identifier(role), sql.Literal(local_password(role)))
    )


def _ensure_database(admin: psycopg.Connection, database: str, owner: str) -> None:
    name = sql.Identifier(database)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, sql.Identifier(owner)))
    # Without this, any role may connect (PUBLIC has CONNECT by default), even under trust auth.
    admin.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(name))


def _domain_dsn(admin_dsn: str, role: str, database: str) -> str:
    params = conninfo_to_dict(admin_dsn)
    params.update(user=role, password=local_password(role), dbname=database)
    return make_conninfo(**params)
