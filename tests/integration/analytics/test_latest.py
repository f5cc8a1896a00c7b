"""Meters' latest readings on real PostgreSQL and memcached: never stale, never going back, memcached optional."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request

from shared.analytics.latest import CacheUnavailable, Latest, LatestCache
from shared.analytics.wiring import Analytics, analytics
from shared.config import Settings
from shared.stores import memcached
from tests.integration.analytics.test_cache import HOUR, meter_event

pytestmark = pytest.mark.integration


@pytest.fixture
async def instance_of(memcached_url: str, domain_dsns: dict[str, str]) -> AsyncIterator[Callable[..., Analytics]]:
    """Makes analytics objects on this session's memcached (no Redis); closes them after the test."""
    made: list[Analytics] = []

    def make(**overrides: Any) -> Analytics:
        fields = {"memcached_url": memcached_url, "domain_dsns": domain_dsns, "retry_initial_delay_s": 0.01,
                  **overrides}
        made.append(analytics(Settings(**fields)))
        return made[-1]

    yield make
    for instance in made:
        await instance.close()


async def latest(parts: Analytics, meter: str) -> tuple[int, Any]:
    """Status and JSON body of GET .../meters/{meter}/latest through the API object, its time parsed."""
    request = Request({"type": "http", "method": "GET", "path": f"/api/v1/analytics/meters/{meter}/latest",
                       "query_string": b"", "headers": []})
    response = await parts.api(request)
    body = orjson.loads(response.body)
    if response.status_code == 200:
        body["ts"] = datetime.fromisoformat(body["ts"])
    return response.status_code, body


def at(minutes: int) -> datetime:
    return HOUR + timedelta(minutes=minutes)


def lookups(outcome: str) -> float:
    """The latest-reading lookups counted so far with this outcome."""
    return REGISTRY.get_sample_value("smartgrid_analytics_latest_requests_total", {"outcome": outcome}) or 0.0


async def test_a_miss_fills_from_the_database_then_hits(instance_of) -> None:
    parts, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    assert (await latest(parts, meter))[0] == 404
    await instance_of(memcached_url=None).aggregate(meter_event(meter, (0, 10.0), (30, 12.0)))  # not cached
    hits, misses = lookups("hit"), lookups("miss")
    status, body = await latest(parts, meter)
    assert status == 200 and body == {"meter_id": meter, "ts": at(30), "import_kwh": 12.0, "power_kw": None,
                                      "voltage_v": None}
    assert (lookups("hit"), lookups("miss")) == (hits, misses + 1)
    assert await latest(parts, meter) == (200, body)
    assert (lookups("hit"), lookups("miss")) == (hits + 1, misses + 1)


async def test_writes_late_readings_and_redeliveries_never_move_it_back(instance_of) -> None:
    writer, reader, meter = instance_of(), instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await writer.aggregate(meter_event(meter, (20, 5.0)))
    assert (await latest(reader, meter))[1]["ts"] == at(20)  # a miss: read from the database, now cached (hot)
    hits = lookups("hit")
    await writer.aggregate(meter_event(meter, (40, 7.0)))
    assert (await latest(reader, meter))[1]["ts"] == at(40)  # the other process's cached value moved on
    assert lookups("hit") == hits + 1  # written through by the aggregation
    await writer.aggregate(meter_event(meter, (10, 4.0), (30, 6.0)))  # late readings
    await writer.aggregate(meter_event(meter, (20, 5.0)))  # a redelivery
    assert (await latest(reader, meter))[1] == {"meter_id": meter, "ts": at(40), "import_kwh": 7.0,
                                                "power_kw": None, "voltage_v": None}


async def test_concurrent_batches_and_readers_never_see_a_value_older_than_a_finished_write(instance_of) -> None:
    writers, meter = [instance_of() for _ in range(3)], f"m-{uuid.uuid4().hex[:6]}"
    minutes = list(range(0, 240, 3))
    random.Random(7).shuffle(minutes)
    batches = [minutes[i:i + 4] for i in range(0, len(minutes), 4)]
    finished: list[datetime] = []

    async def write(index: int, batch: list[int]) -> None:
        parts = writers[index % len(writers)]
        await parts.aggregate(meter_event(meter, *((m, 100.0 + m) for m in batch)))
        newest = max(at(m) for m in batch)
        finished.append(newest)
        status, body = await latest(writers[(index + 1) % len(writers)], meter)
        assert status == 200 and body["ts"] >= newest

    async def read() -> None:
        for _ in range(30):
            floor = max(finished, default=HOUR)
            status, body = await latest(writers[0], meter)
            assert status == 404 or body["ts"] >= floor
            await asyncio.sleep(0)

    await asyncio.gather(*(write(i, batch) for i, batch in enumerate(batches)), read(), read())
    assert (await latest(writers[2], meter))[1]["ts"] == at(max(minutes))


async def test_a_fill_never_replaces_a_later_value_and_a_merge_never_goes_back(memcached_url: str) -> None:
    cache, meter = LatestCache(memcached.connect(memcached_url)), f"m-{uuid.uuid4().hex[:6]}"
    older = Latest(meter, at(0), 1.0, None, None)
    newer = Latest(meter, at(15), 2.0, 0.5, 231.0)
    try:
        await cache.merge(newer)
        assert not await cache.fill(older)
        await cache.merge(older)
        assert Latest.decode(await cache.get(meter)) == newer
    finally:
        await cache.close()


async def test_without_memcached_reads_come_from_the_database_and_writes_fail(instance_of) -> None:
    healthy, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await healthy.aggregate(meter_event(meter, (0, 1.0), (45, 4.0)))
    broken, errors = instance_of(memcached_url="memcached://127.0.0.1:1", retry_attempts=1), lookups("error")
    status, body = await latest(broken, meter)
    assert status == 200 and body["ts"] == at(45) and body["import_kwh"] == 4.0
    assert lookups("error") == errors + 1
    with pytest.raises(CacheUnavailable):  # the event is retried (503) rather than leave a stale value
        await broken.aggregate(meter_event(meter, (60, 5.0)))


async def test_latest_is_only_for_meters(instance_of) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/api/v1/analytics/feeders/F1/latest",
                       "query_string": b"", "headers": []})
    response = await instance_of().api(request)
    assert response.status_code == 404 and orjson.loads(response.body)["field"] == "path"


async def test_counts_of_readings_and_queries_are_served_once_flushed(instance_of) -> None:
    parts, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await parts.aggregate(meter_event(meter, (0, 1.0), (15, 2.0), (30, 3.0)))
    await latest(parts, meter)
    request = Request({"type": "http", "method": "GET", "path": f"/api/v1/analytics/meters/{meter}/counters",
                       "query_string": b"", "headers": []})
    assert orjson.loads((await parts.api(request)).body) == []  # still in memory
    await parts.counters.flush()
    response = await parts.api(request)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    assert [(row["counter"], row["value"]) for row in orjson.loads(response.body)] == [("queries", 1), ("readings", 3)]
