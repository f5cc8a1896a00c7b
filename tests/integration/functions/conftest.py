"""The whole platform (`smartgrid up` with the real functions and eventing/) for this session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))


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
    while "process" not in endpoints or "ingest" not in endpoints or "deadletter" not in endpoints:
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


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll `predicate()` until it returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(interval)
