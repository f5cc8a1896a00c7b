"""Session fixtures: the servers the integration tests talk to, reused from the machine or started here."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from local.functions import Function
from local.servers.databases import drop, provision
from local.servers.kafka import kafka_server
from local.servers.memcached import memcached_server
from local.servers.postgres import postgres_server
from local.servers.process import free_port
from local.servers.redis import redis_server
from local.servers.smtp import mail_sink as local_mail_sink
from local.servers.smtp import read_mail
from local.servers.webhook import WebhookReceiver
from shared.auth.keys import KeyRing, ensure_key
from shared.config import Settings
from shared.stores.postgres import Database
from shared.users.api import AUTH_PREFIX
from shared.users.passwords import new_secret
from shared.users.services import ServiceClients
from tests.identity import ADMIN_CLIENT, EVENTING_CLIENT, FUNCTION_CLIENT, Identity

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings from the environment, as the platform would read them."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def state_dir(settings: Settings) -> Iterator[Path]:
    """SMARTGRID_STATE_DIR when set, else a folder of this session removed at its end."""
    if settings.state_dir != Settings().state_dir:
        yield settings.state_dir
        return
    path = Path(tempfile.mkdtemp(prefix="smartgrid-test-"))
    # Other users must be able to pass through: as root, a private cluster runs as `postgres`.
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_dsn(settings: Settings, state_dir: Path) -> Iterator[str]:
    """A superuser DSN of a running PostgreSQL."""
    with postgres_server(settings.pg_dsn, state_dir) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings, state_dir: Path) -> Iterator[str]:
    """Bootstrap servers of a running Kafka."""
    with kafka_server(settings.kafka_bootstrap, state_dir) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(settings: Settings, state_dir: Path) -> Iterator[str]:
    """The URL of a running Redis: SMARTGRID_REDIS_URL, else a private redis-server of this session."""
    with redis_server(settings.redis_url, state_dir) as url:
        yield url


@pytest.fixture(scope="session")
def memcached_url(settings: Settings, state_dir: Path) -> Iterator[str]:
    """The URL of a running memcached: SMARTGRID_MEMCACHED_URL, else a private memcached of this session."""
    with memcached_server(settings.memcached_url, state_dir) as url:
        yield url


@pytest.fixture(scope="session")
def db_prefix() -> str:
    """The prefix of this session's own databases and roles."""
    return f"t{os.getpid()}_"


@pytest.fixture(scope="session")
def domain_dsns(pg_admin_dsn: str, db_prefix: str) -> Iterator[dict[str, str]]:
    """Domain -> DSN of databases made for this session only, dropped at its end."""
    prefix = db_prefix
    try:
        yield provision(pg_admin_dsn, prefix)
    finally:
        drop(pg_admin_dsn, prefix)


@pytest.fixture
def scratch_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A superuser DSN of an empty database made for one test, dropped after it."""
    name = f"t{os.getpid()}_scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pg_admin_dsn, dbname=name)
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
async def identity(domain_dsns: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Identity]:
    """The session's users service (the real function on the session's `users` database) and its clients."""
    keys_dir = tmp_path_factory.mktemp("auth-keys")
    ensure_key(keys_dir)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}{AUTH_PREFIX}"
    env = {"SMARTGRID_DSN_USERS": domain_dsns["users"], "SMARTGRID_AUTH_ISSUER": issuer,
           "SMARTGRID_AUTH_KEYS_DIR": str(keys_dir)}
    users = Function("users", REPO / "functions" / "users" / "main.py")
    process = users.process(port, "http://127.0.0.1:9/unused", env, keys_dir.parent / "users.log")
    await asyncio.to_thread(process.start, port)
    client_secrets = {client: new_secret() for client in (FUNCTION_CLIENT, ADMIN_CLIENT, EVENTING_CLIENT)}
    database = Database(domain_dsns["users"], max_size=1)
    clients = ServiceClients(database)
    for client, roles in ((FUNCTION_CLIENT, ("registry-reader",)), (ADMIN_CLIENT, ("admin",)),
                          (EVENTING_CLIENT, ("eventing",))):
        await clients.ensure(client, client_secrets[client], roles, actor="tests")
    await database.close()
    try:
        yield Identity(issuer, KeyRing(keys_dir), client_secrets)
    finally:
        await asyncio.to_thread(process.stop)


@dataclass(frozen=True)
class LocalMail:
    """The session's local SMTP sink: where to send, and what it stored."""

    url: str
    state_dir: Path

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first."""
        return read_mail(self.state_dir)


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMail]:
    """A local SMTP sink for this session (always local, so that tests can read what it received)."""
    state_dir = tmp_path_factory.mktemp("mail-sink")
    with local_mail_sink(None, state_dir) as url:
        yield LocalMail(url, state_dir)


@pytest.fixture(scope="session")
async def webhook_receiver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WebhookReceiver]:
    """A local webhook receiver for this session, with a secret of its own; tests may stop and start it."""
    receiver = WebhookReceiver(secrets.token_hex(16), tmp_path_factory.mktemp("webhooks"))
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
