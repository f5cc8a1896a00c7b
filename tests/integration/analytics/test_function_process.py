"""The analytics function as a real process (functions-framework): latest readings over HTTP, counts kept on SIGTERM."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path

import aiohttp
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from local.functions import Function
from local.servers.process import ManagedProcess, free_port
from shared.cloudevents import to_http_binary
from tests.identity import Identity
from tests.integration.analytics.test_cache import meter_event
from tests.integration.analytics.test_latest import at

pytestmark = pytest.mark.integration
SOURCE = Path(__file__).resolve().parents[3] / "functions" / "analytics" / "main.py"


@pytest.fixture
def start_function(domain_dsns: dict[str, str], memcached_url: str, identity: Identity,
                   tmp_path: Path) -> Iterator[Callable[[], tuple[ManagedProcess, str]]]:
    """Starts the analytics function on a free port (memcached, no Redis, counters flushed hourly only)."""
    started: list[ManagedProcess] = []

    def start() -> tuple[ManagedProcess, str]:
        port = free_port()
        env = {"SMARTGRID_DSN_ANALYTICS": domain_dsns["analytics"], "SMARTGRID_MEMCACHED_URL": memcached_url,
               "SMARTGRID_REDIS_URL": "", "SMARTGRID_WRITE_BEHIND_INTERVAL": "3600", **identity.env}
        process = Function("analytics", SOURCE).process(port, "http://127.0.0.1:9/", env, tmp_path / "analytics.log")
        process.start(port)
        started.append(process)
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def http(identity: Identity) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session of a viewer (who reads the API)."""
    async with aiohttp.ClientSession(headers=identity.headers("viewer")) as session:
        yield session


@pytest.fixture
def post(http: aiohttp.ClientSession, identity: Identity) -> Callable[..., Awaitable[None]]:
    """Delivers a meter's readings to a running function as the data plane does (its token)."""

    async def deliver(base: str, meter: str, *readings: tuple[int, float]) -> None:
        headers, body = to_http_binary(meter_event(meter, *readings))
        async with http.post(f"{base}/", data=body, headers={**headers, **identity.delivery}) as response:
            assert response.status == 200, await response.text()

    return deliver


async def latest(http: aiohttp.ClientSession, base: str, meter: str) -> datetime:
    async with http.get(f"{base}/api/v1/analytics/meters/{meter}/latest") as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
        return datetime.fromisoformat((await response.json())["ts"])


async def lookups(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "smartgrid_analytics_latest_requests_total"}


def counts(dsn: str, entities: list[str]) -> dict[tuple[str, str], int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT counter, entity, sum(value) FROM analytics_counters WHERE entity = ANY(%s) "
                            "GROUP BY counter, entity", [entities]).fetchall()
    return {(counter, entity): value for counter, entity, value in rows}


async def test_latest_reading_over_http_follows_every_write_and_is_served_from_memcached(start_function, http, post) -> None:
    _, base = start_function()
    meter = f"m-{uuid.uuid4().hex[:6]}"
    async with http.get(f"{base}/api/v1/analytics/meters/{meter}/latest") as response:
        assert response.status == 404 and (await response.json())["field"] == "id"
    for readings, newest in ((((0, 1.0), (15, 2.0)), 15), (((45, 4.0),), 45), (((30, 3.0), (5, 1.5)), 45),
                             (((60, 5.0), (50, 4.5)), 60)):
        await post(base, meter, *readings)
        assert await latest(http, base, meter) == at(newest)
    before = await lookups(http, base)
    for _ in range(10):
        assert await latest(http, base, meter) == at(60)
    after = await lookups(http, base)
    assert after["hit"] - before.get("hit", 0.0) == 10


async def test_sigterm_flushes_every_pending_count_before_the_process_ends(start_function, http, post, domain_dsns) -> None:
    process, base = start_function()
    meters = [f"m-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for index, meter in enumerate(meters):
        for batch in range(index + 2):
            await post(base, meter, *((batch * 20 + m, 10.0 + batch * 20 + m) for m in range(0, 20, 5)))
        for _ in range(index + 1):
            assert await latest(http, base, meter) == at((index + 1) * 20 + 15)
    entities = [f"meter:{meter}" for meter in meters]
    assert counts(domain_dsns["analytics"], entities) == {}  # still in the process's memory
    process.stop()
    assert process.process is not None and process.process.returncode != -signal.SIGKILL
    assert counts(domain_dsns["analytics"], entities) == {
        **{("readings", f"meter:{meter}"): 4 * (index + 2) for index, meter in enumerate(meters)},
        **{("queries", f"meter:{meter}"): index + 1 for index, meter in enumerate(meters)},
    }
