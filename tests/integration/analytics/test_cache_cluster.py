"""The analytics answer cache on a real Redis Cluster (SMARTGRID_REDIS_CLUSTER): hash-tagged, never stale."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from local.servers.redis_cluster import redis_cluster
from shared.analytics.wiring import Analytics, analytics
from shared.config import Settings
from shared.stores import redis
from tests.integration.analytics.test_cache import HOUR, energy, lookups, meter_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A node of a private three-master Redis Cluster of this module."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture
async def instance_of(cluster_url: str, domain_dsns: dict[str, str]) -> AsyncIterator[Callable[..., Analytics]]:
    """Makes analytics objects on the cluster with one Redis prefix per test; closes them after the test."""
    made: list[Analytics] = []
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def make(**overrides: Any) -> Analytics:
        fields = {"redis_url": cluster_url, "redis_cluster": True, "redis_prefix": prefix,
                  "domain_dsns": domain_dsns, "retry_initial_delay_s": 0.01, **overrides}
        made.append(analytics(Settings(**fields)))
        return made[-1]

    yield make
    for instance in made:
        await instance.close()


async def test_answers_are_cached_across_the_cluster_and_never_stale_after_a_write(instance_of) -> None:
    writer, reader = instance_of(), instance_of()
    meters = [f"m-{uuid.uuid4().hex[:6]}" for _ in range(12)]  # entities spread over the three masters
    for meter in meters:
        await writer.aggregate(meter_event(meter, (0, 10.0), (30, 12.0)))
    hits = lookups("hit")
    for meter in meters:
        for path in (f"/api/v1/analytics/meters/{meter}", f"/api/v1/analytics/feeders/{meter}-F"):
            assert await energy(reader, path) == [2.0]
            assert await energy(reader, path) == [2.0]
    assert lookups("hit") == hits + 2 * len(meters)
    for meter in meters:
        await writer.aggregate(meter_event(meter, (70, 15.0)))
        assert await energy(reader, f"/api/v1/analytics/feeders/{meter}-F") == [2.0, 3.0]
        assert await energy(reader, f"/api/v1/analytics/meters/{meter}") == [2.0, 3.0]


async def test_an_entitys_generation_and_answers_share_one_slot(instance_of, cluster_url: str) -> None:
    parts, meter = instance_of(), f"m-{uuid.uuid4().hex[:6]}"
    await parts.aggregate(meter_event(meter, (0, 1.0), (15, 2.0)))
    assert await energy(parts, f"/api/v1/analytics/meters/{meter}") == [1.0]
    assert parts.cache is not None
    key, cached = await parts.cache.lookup("meter", meter, f"hour:{HOUR}:{HOUR + timedelta(hours=2)}")
    assert cached is not None
    client = redis.connect(cluster_url, cluster=True)
    assert isinstance(client, RedisCluster)
    try:
        generation = key.replace(key[key.index("}:") + 2:], "gen")
        assert await client.get(generation) == b"1"
        assert client.keyslot(key) == client.keyslot(generation)
    finally:
        await client.aclose()
