"""Schema migrations: apply `<schemas>/migrations/<domain>/NNN_description.sql` files in order.

Each file runs in its own transaction together with its row in `schema_migrations`, so a
failing file leaves no trace. A session advisory lock keeps two processes from racing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.config import Settings

# Key of the advisory lock held while migrating; advisory locks are per database.
_LOCK_KEY = 0x5347_4D49  # "SGMI"
_FILE_NAME = re.compile(r"(?P<version>\d{3,})_(?P<description>[a-z0-9_]+)\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationsNotFoundError(FileNotFoundError):
    """Raised when a domain has no folder of migrations."""


class MigrationNameError(ValueError):
    """Raised when a file among the migrations is not named NNN_description.sql or repeats a version."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version number, its name (the file name without `.sql`) and its path."""

    version: int
    name: str
    path: Path


def find_migrations(domain: str, schemas_dir: Path | None = None) -> list[Migration]:
    """The migrations of `domain`, ordered by version."""
    folder = (schemas_dir or Settings.from_env().schemas_dir) / "migrations" / domain
    if not folder.is_dir():
        raise MigrationsNotFoundError(f"expected a folder of migrations for domain {domain!r} at {folder}, found none")
    by_version: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationNameError(f"expected a migration named like 001_description.sql, found {path}")
        version = int(match["version"])
        if version in by_version:
            raise MigrationNameError(
                f"expected one migration per version, found {by_version[version].path.name} and {path.name}"
            )
        by_version[version] = Migration(version, path.stem, path)
    return [by_version[version] for version in sorted(by_version)]


def apply_migrations(dsn: str, domain: str, *, schemas_dir: Path | None = None) -> list[str]:
    """Apply the migrations of `domain` not yet recorded in the database; return their names."""
    migrations = find_migrations(domain, schemas_dir)
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A session lock: released when this connection closes, whatever happens below.
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        done = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
        for migration in migrations:
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.path.read_text(encoding="utf-8"))
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied_now.append(migration.name)
    return applied_now
