"""Fixtures shared by the integration tests: a stand-in broker, and the whole platform (`smartgrid up` with
the real functions and eventing/) for this session, with its tokens and a device sender."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from shared.auth.keys import KeyRing
from tests.identity import Identity
from tests.integration.eventing.subscriber import Subscriber
from tests.integration.platform import SMARTGRID, Devices


@pytest.fixture
async def broker() -> AsyncIterator[Subscriber]:
    """An HTTP endpoint standing in for the broker (K_SINK): records the events emitted to it."""
    subscriber = Subscriber()
    await subscriber.start()
    yield subscriber
    await subscriber.stop()


@pytest.fixture(scope="session")
def platform(
    kafka_bootstrap: str, pg_admin_dsn: str, redis_url: str, db_prefix: str, domain_dsns: dict[str, str],
    tmp_path_factory,
) -> Iterator[dict[str, str]]:
    """Endpoint name -> URL of a running `smartgrid up` on this session's servers and databases."""
    state_dir = tmp_path_factory.mktemp("platform")
    env = {
        **os.environ,
        "SMARTGRID_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SMARTGRID_PG_DSN": pg_admin_dsn,
        "SMARTGRID_REDIS_URL": redis_url,
        "SMARTGRID_DB_PREFIX": db_prefix,
        "SMARTGRID_STATE_DIR": str(state_dir),
    }
    log = open(state_dir / "up.log", "wb")
    process = subprocess.Popen([SMARTGRID, "up", "--idle-seconds", "120"], stdout=subprocess.PIPE, stderr=log, env=env)
    assert process.stdout is not None
    endpoints: dict[str, str] = {}
    while not {"process", "ingest", "deadletter", "auth", "users"} <= endpoints.keys():
        line = process.stdout.readline().decode()
        assert line, f"smartgrid up ended early; see {state_dir / 'up.log'}"
        name, _, url = line.strip().partition(" ")
        endpoints[name] = url
    endpoints["state_dir"] = str(state_dir)
    try:
        yield endpoints
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()


@pytest.fixture(scope="session")
def platform_identity(platform: dict[str, str]) -> Identity:
    """Tokens of the running platform's issuer, signed with its own key (the tests play its token endpoint)."""
    return Identity(platform["auth"], KeyRing(Path(platform["state_dir"]) / "auth" / "keys"), {})


@pytest.fixture
async def http(platform_identity: Identity) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session of an admin user (every API; ingest takes a device's token: `devices`)."""
    async with aiohttp.ClientSession(headers=platform_identity.headers("admin", subject="test-admin")) as session:
        yield session


@pytest.fixture
async def devices(platform: dict[str, str], platform_identity: Identity,
                  http: aiohttp.ClientSession) -> AsyncIterator[Devices]:
    """Posts to the platform's ingest as the device each event names, registering it first."""
    yield Devices(platform["ingest"], http, platform_identity)
