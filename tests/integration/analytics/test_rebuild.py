"""`smartgrid analytics rebuild`: aggregates of a range recomputed from the stored points, cache retired."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from local.analytics_cli import rebuild
from shared.analytics.aggregator import Aggregator
from shared.analytics.cache import AnswerCache
from shared.analytics.points import distinct_points
from shared.analytics.store import AggregateStore
from shared.config import Settings
from shared.stores import redis
from shared.stores.postgres import Database
from tests.integration.analytics.test_aggregates import START, check, readings

pytestmark = pytest.mark.integration


async def test_rebuild_restores_damaged_aggregates_and_retires_cached_answers(
    database: Database, domain_dsns: dict[str, str], redis_url: str
) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = readings(prefix, seed=41)
    await Aggregator(database).add(distinct_points(sent))
    async with database.connection() as conn:
        await conn.execute("UPDATE aggregates SET energy_kwh = -1 WHERE entity_id LIKE %s", [f"{prefix}%"])
        await conn.execute("DELETE FROM aggregates WHERE entity_id LIKE %s AND bucket = 'day'", [f"{prefix}%"])
    settings = Settings(domain_dsns=domain_dsns, redis_url=redis_url, redis_prefix=f"test-{prefix}:")
    cache = AnswerCache(redis.connect(redis_url), redis.Keys(settings.redis_prefix))
    stale_key, _ = await cache.lookup("feeder", f"{prefix}A", "q")
    day = START.replace(hour=0, minute=0)
    entities = await rebuild(settings, day, day + timedelta(days=3))
    assert {("meter", f"{prefix}m0"), ("feeder", f"{prefix}B"), ("region", f"{prefix}north")} <= entities
    assert (await cache.lookup("feeder", f"{prefix}A", "q"))[0] != stale_key
    await cache.close()
    await check(AggregateStore(database), distinct_points(sent))
