"""Migration bookkeeping by version, name and checksum: edited, renamed, missing and older-bookkeeping rows."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from shared.migrations import MigrationMismatch, apply_migrations

pytestmark = pytest.mark.integration

FILES = {
    "001_create_t.sql": "CREATE TABLE t (a int);",
    "002_add_b.sql": "ALTER TABLE t ADD COLUMN b int;",
}


def _schemas(tmp_path: Path, domain: str = "demo", files: dict[str, str] = FILES) -> Path:
    """A schemas folder holding `files` as the migrations of `domain`."""
    folder = tmp_path / "schemas" / "migrations" / domain
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return tmp_path / "schemas"


def _rows(dsn: str) -> list[tuple[int, str, str | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version").fetchall()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_new_migration_applies_once(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _schemas(tmp_path)
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == ["001_create_t", "002_add_b"]
    assert _rows(scratch_dsn) == [(1, "001_create_t", _sha(FILES["001_create_t.sql"])),
                               (2, "002_add_b", _sha(FILES["002_add_b.sql"]))]
    _schemas(tmp_path, files={"003_add_c.sql": "ALTER TABLE t ADD COLUMN c int;"})
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == ["003_add_c"]
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == []
    assert [row[:2] for row in _rows(scratch_dsn)] == [(1, "001_create_t"), (2, "002_add_b"), (3, "003_add_c")]


def test_an_edited_migration_is_refused_naming_the_file(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _schemas(tmp_path)
    apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    _schemas(tmp_path, files={"002_add_b.sql": "ALTER TABLE t ADD COLUMN b bigint;",
                              "003_add_c.sql": "ALTER TABLE t ADD COLUMN c int;"})
    with pytest.raises(MigrationMismatch, match=r"002_add_b\.sql was edited after it was applied") as refused:
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    assert "add a new migration" in str(refused.value)
    assert [row[0] for row in _rows(scratch_dsn)] == [1, 2]  # nothing applied after the refusal


def test_a_renamed_migration_is_refused_naming_both(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _schemas(tmp_path)
    apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    folder = schemas / "migrations" / "demo"
    (folder / "002_add_b.sql").rename(folder / "002_add_column_b.sql")
    with pytest.raises(MigrationMismatch, match=r"applied as 002_add_b\.sql, found 002_add_column_b\.sql"):
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)


def test_a_missing_migration_is_refused(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _schemas(tmp_path)
    apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    (schemas / "migrations" / "demo" / "002_add_b.sql").unlink()
    with pytest.raises(MigrationMismatch, match=r"version 2 was applied as 002_add_b\.sql, found no file"):
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)


def _older_bookkeeping(dsn: str, rows: list[tuple[int, str]], statements: list[str]) -> None:
    """A scratch_dsn migrated by the older bookkeeping: `schema_migrations` with version and name only."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, name in rows:
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))


def test_older_bookkeeping_is_adopted_when_the_names_match(tmp_path: Path, scratch_dsn: str) -> None:
    _older_bookkeeping(scratch_dsn, [(1, "001_create_t"), (2, "002_add_b")], list(FILES.values()))
    schemas = _schemas(tmp_path, files={**FILES, "003_add_c.sql": "ALTER TABLE t ADD COLUMN c int;"})
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == ["003_add_c"]
    assert _rows(scratch_dsn) == [(1, "001_create_t", _sha(FILES["001_create_t.sql"])),
                               (2, "002_add_b", _sha(FILES["002_add_b.sql"])),
                               (3, "003_add_c", _sha("ALTER TABLE t ADD COLUMN c int;"))]
    # Adopted checksums are now enforced.
    _schemas(tmp_path, files={"001_create_t.sql": "CREATE TABLE t (a bigint);"})
    with pytest.raises(MigrationMismatch, match=r"001_create_t\.sql was edited"):
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)


def test_older_bookkeeping_of_a_renumbered_migration_is_refused(tmp_path: Path, scratch_dsn: str) -> None:
    """The `005_counters` case: a migration applied under one number before it was renumbered, and
    that number now holds another file."""
    _older_bookkeeping(scratch_dsn, [(1, "001_create_t"), (2, "002_add_b"), (3, "003_counters")],
                       [*FILES.values(), "CREATE TABLE counters (n int);"])
    schemas = _schemas(tmp_path, files={"001_create_t.sql": FILES["001_create_t.sql"],
                                        "002_counters.sql": "CREATE TABLE counters (n int);",
                                        "003_add_b.sql": FILES["002_add_b.sql"]})
    with pytest.raises(MigrationMismatch) as refused:
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    message = str(refused.value)
    assert "version 2 was applied as 002_add_b.sql, found 002_counters.sql" in message
    assert "version 3 was applied as 003_counters.sql, found 003_add_b.sql" in message
    # Nothing adopted or applied: the table stays as the older bookkeeping left it (plus the column).
    assert _rows(scratch_dsn) == [(1, "001_create_t", None), (2, "002_add_b", None), (3, "003_counters", None)]


def _smartgrid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("smartgrid")
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


def test_cli_migrates_a_domain_idempotently_and_refuses_a_mismatch(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _schemas(tmp_path, domain="users")
    env = {"SMARTGRID_SCHEMAS_DIR": str(schemas)}
    first = _smartgrid("migrate", "--domain", "users", "--dsn", scratch_dsn, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["users: applied 001_create_t", "users: applied 002_add_b"]
    again = _smartgrid("migrate", "--domain", "users", "--dsn", scratch_dsn, env=env)
    assert (again.returncode, again.stdout.strip()) == (0, "users: up to date")
    from_env = _smartgrid("migrate", "--domain", "users", env={**env, "SMARTGRID_DSN_USERS": scratch_dsn})
    assert (from_env.returncode, from_env.stdout.strip()) == (0, "users: up to date"), from_env.stderr

    (schemas / "migrations" / "users" / "002_add_b.sql").write_text("ALTER TABLE t ADD COLUMN b text;")
    refused = _smartgrid("migrate", "--domain", "users", "--dsn", scratch_dsn, env=env)
    assert refused.returncode == 1
    assert "002_add_b.sql was edited after it was applied" in refused.stderr
    assert "Traceback" not in refused.stderr
