"""The analytics function's objects on real PostgreSQL and Redis: cached answers never outlive a write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request

from shared.analytics.wiring import Analytics, analytics
from shared.cloudevents import new_event
from shared.config import Settings

pytestmark = pytest.mark.integration
HOUR = datetime(2026, 11, 21, 6, tzinfo=UTC)


@pytest.fixture
async def instance_of(redis_url: str, domain_dsns: dict[str, str]) -> AsyncIterator[Callable[..., Analytics]]:
    """Makes analytics objects with this test's Redis prefix; closes them after the test."""
    made: list[Analytics] = []

    def make(**overrides: Any) -> Analytics:
        fields = {"redis_url": redis_url, "redis_prefix": f"test-{uuid.uuid4().hex[:8]}:",
                  "domain_dsns": domain_dsns, "retry_initial_delay_s": 0.01, **overrides}
        made.append(analytics(Settings(**fields)))
        return made[-1]

    yield make
    for instance in made:
        await instance.close()


def meter_event(meter: str, *readings: tuple[int, float]) -> Any:
    data = {"gateway_id": "gw", "readings": [
        {"meter_id": meter, "site_id": "s", "feeder_id": f"{meter}-F", "timestamp": (HOUR + timedelta(minutes=m)).isoformat(),
         "registers": {"1.8.0": kwh}} for m, kwh in readings]}
    return new_event("com.smartgrid.meter.readings.batch", "/test", uuid.uuid4().hex, data)


async def energy(parts: Analytics, path: str) -> list[float]:
    query = f"bucket=hour&from={HOUR.isoformat()}&to={(HOUR + timedelta(hours=2)).isoformat()}".replace("+", "%2B")
    request = Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []})
    response = await parts.api(request)
    assert response.status_code == 200 and response.headers["cache-control"] == "max-age=300"
    return [row["energy_kwh"] for row in orjson.loads(response.body)]


def lookups(outcome: str) -> float:
    """The cache lookups counted so far with this outcome."""
    return REGISTRY.get_sample_value("smartgrid_analytics_cache_requests_total", {"outcome": outcome}) or 0.0


async def test_lookups_count_a_miss_then_a_hit(instance_of) -> None:
    parts, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await parts.aggregate(meter_event(meter, (0, 10.0), (30, 12.0)))
    hits, misses = lookups("hit"), lookups("miss")
    assert await energy(parts, f"/api/v1/analytics/meters/{meter}") == [2.0]
    assert (lookups("hit"), lookups("miss")) == (hits, misses + 1)
    assert await energy(parts, f"/api/v1/analytics/meters/{meter}") == [2.0]
    assert (lookups("hit"), lookups("miss")) == (hits + 1, misses + 1)


async def test_an_answer_is_cached_and_a_write_retires_it(instance_of) -> None:
    parts, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await parts.aggregate(meter_event(meter, (0, 10.0), (30, 12.0)))
    path = f"/api/v1/analytics/feeders/{meter}-F"
    assert await energy(parts, path) == [2.0]
    assert parts.cache is not None
    _, cached = await parts.cache.lookup("feeder", f"{meter}-F", f"hour:{HOUR}:{HOUR + timedelta(hours=2)}")
    assert cached is not None and [row["energy_kwh"] for row in orjson.loads(cached)] == [2.0]
    await parts.aggregate(meter_event(meter, (70, 15.0)))
    assert await energy(parts, path) == [2.0, 3.0]


async def test_without_redis_the_api_answers_from_the_database(instance_of) -> None:
    meter = f"m-{uuid.uuid4().hex[:6]}"
    await instance_of().aggregate(meter_event(meter, (0, 1.0), (15, 4.0)))
    broken, errors = instance_of(redis_url="redis://127.0.0.1:1/0", retry_attempts=1), lookups("error")
    assert await energy(broken, f"/api/v1/analytics/meters/{meter}") == [3.0]
    assert lookups("error") == errors + 1
