"""Schema migrations: apply `<schemas>/migrations/<domain>/NNN_description.sql` files in order.

Each file runs in its own transaction together with its row in `schema_migrations` (version, name,
SHA-256 checksum of the file's bytes), so a failing file leaves no trace. A session advisory lock
keeps two processes from racing. Before anything is applied, every recorded row is compared with
the files: a migration applied and since edited, renamed, renumbered or removed is refused with
MigrationMismatch naming the file. Rows of the older bookkeeping (version and name only) get their
checksum filled in when their name still matches.
"""

from __future__ import annotations

import hashlib
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
    checksum   text,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# A table made by the older bookkeeping has no checksum column: add it (NULL until adopted).
_ADD_CHECKSUM = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"


class MigrationsNotFoundError(FileNotFoundError):
    """Raised when a domain has no folder of migrations."""


class MigrationNameError(ValueError):
    """Raised when a file among the migrations is not named NNN_description.sql or repeats a version."""


class MigrationMismatch(ValueError):
    """Raised when a recorded migration no longer matches its file: edited, renamed, renumbered or missing."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version number, its name (the file name without `.sql`) and its path."""

    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        """SHA-256 (hex) of the file's bytes."""
        return _checksum(self.path.read_bytes())


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    """Apply the migrations of `domain` not yet recorded in the database; return their names.

    Raises MigrationMismatch, before applying anything, when a recorded migration no longer matches
    its file."""
    schemas_dir = schemas_dir or Settings.from_env().schemas_dir
    migrations = find_migrations(domain, schemas_dir)
    by_version = {migration.version: migration for migration in migrations}
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A session lock: released when this connection closes, whatever happens below.
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        conn.execute(_ADD_CHECKSUM)
        recorded = conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version").fetchall()
        adopt = _verify(domain, schemas_dir / "migrations" / domain, recorded, by_version)
        if adopt:
            with conn.transaction():
                for migration, checksum in adopt:
                    conn.execute(
                        "UPDATE schema_migrations SET checksum = %s WHERE version = %s AND checksum IS NULL",
                        (checksum, migration.version),
                    )
        done = {version for version, _name, _checksum in recorded}
        for migration in migrations:
            if migration.version in done:
                continue
            data = migration.path.read_bytes()
            with conn.transaction():
                conn.execute(data.decode("utf-8"))
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, _checksum(data)),
                )
            applied_now.append(migration.name)
    return applied_now


def _verify(
    domain: str, folder: Path, recorded: list[tuple[int, str, str | None]], by_version: dict[int, Migration]
) -> list[tuple[Migration, str]]:
    """Compare the recorded rows with the files; return the older-bookkeeping rows to adopt (with the
    checksum to record); raise MigrationMismatch listing every row that does not match."""
    problems: list[str] = []
    adopt: list[tuple[Migration, str]] = []
    for version, name, recorded_checksum in recorded:
        migration = by_version.get(version)
        if migration is None:
            problems.append(
                f"version {version} was applied as {name}.sql, found no file of version {version}: "
                f"restore {name}.sql (an applied migration stays in the folder)"
            )
        elif migration.name != name:
            problems.append(
                f"version {version} was applied as {name}.sql, found {migration.path.name} in its place "
                f"(renamed or renumbered): restore {name}.sql under its applied name and number, and give "
                f"{migration.path.name} a new version after the last one"
            )
        else:
            checksum = migration.checksum
            if recorded_checksum is None:
                adopt.append((migration, checksum))
            elif recorded_checksum != checksum:
                problems.append(
                    f"{migration.path.name} was edited after it was applied (expected sha256 "
                    f"{recorded_checksum[:12]}…, found {checksum[:12]}…): restore the text that was applied, "
                    "and add a new migration for the change instead of editing"
                )
    if problems:
        raise MigrationMismatch(
            f"the migrations recorded in the {domain} database do not match {folder}: " + "; ".join(problems)
        )
    return adopt
