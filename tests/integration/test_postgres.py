"""PostgreSQL on the local platform: the server, per-domain databases and migrations."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from local.servers.databases import provision
from local.servers.postgres import (
    MACHINE_DSN,
    PostgresNotInstalledError,
    find_bin_dir,
    postgres_server,
    server_answers,
)
from shared.migrations import (
    MigrationNameError,
    MigrationsNotFoundError,
    apply_migrations,
    find_migrations,
)

pytestmark = pytest.mark.integration


def _dbname(dsn: str) -> str:
    return conninfo_to_dict(dsn)["dbname"]


def _write(folder: Path, files: dict[str, str]) -> Path:
    """A schemas folder holding `files` as the migrations of domain `demo`."""
    domain_dir = folder / "migrations" / "demo"
    domain_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (domain_dir / name).write_text(text)
    return folder


def test_provision_applies_each_domains_migrations(domain_dsns: dict[str, str]) -> None:
    assert set(domain_dsns) == {"smartgrid", "analytics", "users"}
    for domain, dsn in domain_dsns.items():
        expected = [(m.version, m.name) for m in find_migrations(domain)]
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall() == expected
            assert conn.execute("SELECT value FROM platform_info WHERE key = 'domain'").fetchone() == (domain,)
            assert conn.execute("SELECT current_user").fetchone() == (conninfo_to_dict(dsn)["user"],)


def test_migrations_and_provisioning_are_idempotent(pg_admin_dsn: str, domain_dsns: dict[str, str]) -> None:
    for domain, dsn in domain_dsns.items():
        assert apply_migrations(dsn, domain) == []
    prefix = _dbname(domain_dsns["smartgrid"]).removesuffix("smartgrid")
    assert provision(pg_admin_dsn, prefix) == domain_dsns
    for domain, dsn in domain_dsns.items():
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(find_migrations(domain)),)


def test_each_role_connects_only_to_its_own_database(domain_dsns: dict[str, str]) -> None:
    for own, dsn in domain_dsns.items():
        for other, other_dsn in domain_dsns.items():
            target = make_conninfo(dsn, dbname=_dbname(other_dsn))
            if own == other:
                with psycopg.connect(target) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            else:
                with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                    psycopg.connect(target).close()


def test_migrations_run_in_order_and_a_failing_one_leaves_no_trace(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _write(
        tmp_path,
        {
            "002_add_b.sql": "ALTER TABLE t ADD COLUMN b int;",
            "001_create_t.sql": "CREATE TABLE t (a int);",
            "010_broken.sql": "CREATE TABLE u (x int); SELECT 1 / 0;",
        },
    )
    with pytest.raises(psycopg.errors.DivisionByZero):
        apply_migrations(scratch_dsn, "demo", schemas_dir=schemas)
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall() == [
            (1, "001_create_t"),
            (2, "002_add_b"),
        ]
        assert conn.execute("SELECT to_regclass('u')").fetchone() == (None,)

    (schemas / "migrations" / "demo" / "010_broken.sql").unlink()
    _write(schemas, {"010_create_u.sql": "CREATE TABLE u (x int);"})
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == ["010_create_u"]
    assert apply_migrations(scratch_dsn, "demo", schemas_dir=schemas) == []


def test_concurrent_runs_apply_each_migration_once(tmp_path: Path, scratch_dsn: str) -> None:
    schemas = _write(tmp_path, {"001_slow.sql": "CREATE TABLE slow (a int); SELECT pg_sleep(0.5);"})
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: apply_migrations(scratch_dsn, "demo", schemas_dir=schemas), range(2)))
    assert sorted(runs) == [[], ["001_slow"]]


def test_badly_named_or_missing_migrations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationsNotFoundError, match="domain 'demo'"):
        apply_migrations("dbname=unused", "demo", schemas_dir=tmp_path)
    schemas = _write(tmp_path, {"1_init.sql": "SELECT 1;"})
    with pytest.raises(MigrationNameError, match="1_init.sql"):
        apply_migrations("dbname=unused", "demo", schemas_dir=schemas)


def test_given_dsn_is_used_as_is(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="local.servers.postgres")
    with postgres_server("postgresql://someone@db.example:5432/x", tmp_path) as dsn:
        assert dsn == "postgresql://someone@db.example:5432/x"
    assert "SMARTGRID_PG_DSN" in caplog.text


def test_private_cluster_is_created_reused_and_stopped(caplog: pytest.LogCaptureFixture, state_dir: Path) -> None:
    try:
        find_bin_dir()
    except PostgresNotInstalledError as error:
        pytest.skip(str(error))
    caplog.set_level(logging.INFO, logger="local.servers.postgres")
    folder = state_dir / "private-pg-test"
    token = f"{os.getpid()}-{time.time_ns()}"

    with postgres_server(None, folder, reuse_machine_server=False) as dsn:
        assert dsn != MACHINE_DSN
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
            conn.execute("CREATE TABLE IF NOT EXISTS kept (token text)")
            conn.execute("INSERT INTO kept VALUES (%s)", (token,))
    assert not server_answers(dsn)
    assert "private cluster" in caplog.text

    with postgres_server(None, folder, reuse_machine_server=False) as again:
        with psycopg.connect(again) as conn:
            assert conn.execute("SELECT count(*) FROM kept WHERE token = %s", (token,)).fetchone() == (1,)
    assert "starting the private cluster" in caplog.text
