"""PostgreSQL: `SMARTGRID_PG_DSN` when set, else the machine's server, else a private initdb cluster."""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from local.servers.process import ManagedProcess, ServerStartError, free_port

log = logging.getLogger(__name__)

MACHINE_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_SYSTEM_USER = "postgres"  # PostgreSQL refuses to run as root; Debian's package creates this user


class PostgresNotInstalledError(FileNotFoundError):
    """Raised when no `initdb` is on PATH or under /usr/lib/postgresql/*/bin."""


class ClusterInitError(RuntimeError):
    """Raised when a private cluster cannot be created in the state folder."""


@contextmanager
def postgres_server(dsn: str | None, state_dir: Path, *, reuse_machine_server: bool = True) -> Iterator[str]:
    """Yield a superuser DSN: `dsn` if given, else the server at 127.0.0.1:5432, else a private cluster."""
    if dsn:
        log.info("PostgreSQL: using the server given by SMARTGRID_PG_DSN")
        yield dsn
        return
    if reuse_machine_server and server_answers(MACHINE_DSN):
        log.info("PostgreSQL: reusing the machine's server at 127.0.0.1:5432")
        yield MACHINE_DSN
        return
    with private_cluster(state_dir) as private_dsn:
        yield private_dsn


def server_answers(dsn: str, timeout: float = 2.0) -> bool:
    """True when a connection to `dsn` succeeds within `timeout` seconds."""
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(timeout))):
            return True
    except psycopg.OperationalError:
        return False


def find_bin_dir() -> Path:
    """The folder holding `initdb` and its matching `postgres`: PATH first, then the newest Debian version."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if debian:
        return Path(debian[-1]).parent
    raise PostgresNotInstalledError(
        "expected initdb on PATH or under /usr/lib/postgresql/*/bin, found neither; "
        "install PostgreSQL or set SMARTGRID_PG_DSN"
    )


@contextmanager
def private_cluster(state_dir: Path) -> Iterator[str]:
    """Yield the DSN of a cluster in `state_dir/pg/data` (created on first use) running on a free port."""
    bin_dir = find_bin_dir()
    pg_dir = state_dir.resolve() / "pg"
    data_dir = pg_dir / "data"
    log_path = state_dir.resolve() / "logs" / "postgres.log"
    as_user = _run_as_prefix(pg_dir)
    if (data_dir / "PG_VERSION").exists():
        log.info("PostgreSQL: starting the private cluster in %s", data_dir)
    else:
        log.info("PostgreSQL: creating a private cluster with initdb in %s", data_dir)
        _initdb(as_user, bin_dir, data_dir, log_path)
    port = free_port()
    postgres = ManagedProcess(
        "postgres",
        [
            *as_user,
            str(bin_dir / "postgres"),
            "-D", str(data_dir),
            "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={pg_dir}",
            "-c", "max_connections=200",
        ],
        log_path,
    )
    postgres.start(port)
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_accepting(dsn, log_path)
        yield dsn
    finally:
        _fast_shutdown(postgres)


def _major_version(initdb_path: str) -> float:
    try:
        return float(Path(initdb_path).parents[1].name)
    except ValueError:
        return 0.0


def _run_as_prefix(pg_dir: Path) -> list[str]:
    """`runuser -u postgres --` when we are root (after handing `pg_dir` to that user), else nothing."""
    pg_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise ClusterInitError(
            f"PostgreSQL refuses to run as root: expected a system user {_SYSTEM_USER!r} to run it as, "
            "found none; install Debian's postgresql package or set SMARTGRID_PG_DSN"
        ) from None
    for folder, _, files in os.walk(pg_dir):
        os.chown(folder, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), user.pw_uid, user.pw_gid)
    prefix = ["runuser", "-u", _SYSTEM_USER, "--"]
    if subprocess.run([*prefix, "test", "-w", str(pg_dir)]).returncode != 0:
        raise ClusterInitError(
            f"expected user {_SYSTEM_USER!r} to be able to write to {pg_dir}, found it cannot "
            "(a parent folder is closed to it); choose a SMARTGRID_STATE_DIR it can reach"
        )
    return prefix


def _initdb(as_user: list[str], bin_dir: Path, data_dir: Path, log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        *as_user,
        str(bin_dir / "initdb"),
        "-D", str(data_dir),
        "--username=postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
    ]
    with open(log_path, "ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir.parent)
    if result.returncode != 0:
        raise ClusterInitError(
            f"expected initdb to create a cluster in {data_dir}, found exit code {result.returncode}; see {log_path}"
        )


def _wait_until_accepting(dsn: str, log_path: Path, timeout: float = 30.0) -> None:
    """The port opens before recovery ends; wait until a session can really start."""
    deadline = time.monotonic() + timeout
    while not server_answers(dsn):
        if time.monotonic() > deadline:
            raise ServerStartError(f"postgres did not accept connections in {timeout:.0f} s; see {log_path}")
        time.sleep(0.1)


def _fast_shutdown(postgres: ManagedProcess, grace: float = 30.0) -> None:
    """SIGINT is PostgreSQL's fast shutdown (sessions are ended); SIGTERM would wait for them."""
    if postgres.process is not None and postgres.running:
        try:
            os.killpg(postgres.process.pid, signal.SIGINT)
            postgres.process.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    postgres.stop()
