"""The analytics objects of a function, built from the settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.analytics.aggregator import Aggregator
from shared.analytics.api import AnalyticsApi
from shared.analytics.cache import AnswerCache
from shared.analytics.counters import READINGS, Counters
from shared.analytics.latest import LatestCache, LatestStore, LatestValues
from shared.analytics.points import Point, distinct_points
from shared.analytics.store import AggregateStore
from shared.auth.wiring import gateway_check
from shared.cloudevents import CloudEvent
from shared.config import Settings
from shared.readings.decoding import ReadingDecoder
from shared.readings.store import METER_READINGS
from shared.resilience import Downstream, Downstreams
from shared.stores import memcached, postgres, redis
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from shared.validation.registry import RegistryClient


@dataclass(frozen=True)
class Analytics:
    """Aggregation of reading events and the query API, over the `analytics` database."""

    decoder: ReadingDecoder
    aggregator: Aggregator
    api: AnalyticsApi
    database: Downstream
    cache: AnswerCache | None
    redis: Downstream
    latest: LatestValues
    counters: Counters

    async def aggregate(self, event: CloudEvent) -> dict[str, Any]:
        """Fold the meter readings of one event into the aggregates (sensor readings are skipped), then
        retire the cached answers of every meter, feeder and region of the event, move the meters'
        cached latest readings forward and count the readings (write-behind)."""
        readings = await self.decoder.read(event)
        if readings.table is not METER_READINGS:
            return {"points": 0, "new": 0, "quarters": 0, "skipped": len(readings.datums)}
        points = distinct_points(readings.datums)
        counts = await self.database.call(lambda: self.aggregator.add(points), what=f"aggregate {len(points)} points")
        if self.cache is not None:
            cache = self.cache
            await self.redis.call(lambda: cache.touched(entities(points)), what="retire cached answers")
        await self.latest.written(p.meter_id for p in points)
        await self.counters.add(READINGS, Counter(f"meter:{p.meter_id}" for p in points))
        return counts

    async def close(self) -> None:
        """Flush the counters, then close the database pool and the Redis and memcached clients."""
        await self.counters.close()
        await self.aggregator.close()
        await self.latest.close()
        if self.cache is not None:
            await self.cache.close()


def entities(points: Iterable[Point]) -> set[tuple[str, str]]:
    """The (level, id) of every meter, feeder and region of the points."""
    found: set[tuple[str, str]] = set()
    for p in points:
        found.add(("meter", p.meter_id))
        found.update((level, entity) for level, entity in (("feeder", p.feeder_id), ("region", p.region)) if entity)
    return found


def analytics(settings: Settings) -> Analytics:
    """Build the analytics objects: one pool on the `analytics` database, the answer cache when Redis is set,
    the latest-reading cache when memcached is set, the write-behind counters."""
    catalogue = Catalogue.load(settings.schemas_dir / "events", max_future_seconds=settings.max_future_seconds)
    resolve = RegistryClient(settings.schema_registry_url).event_schema if settings.schema_registry_url else catalogue.by_id
    downstreams = Downstreams.from_settings(settings)
    database = downstreams.get("postgres:analytics", postgres.is_transient)
    redis_downstream = downstreams.get("redis", redis.is_transient)
    cache = (AnswerCache(redis.connect(settings.redis_url, cluster=settings.redis_cluster), redis.Keys(settings.redis_prefix))
             if settings.redis_url else None)
    pool = Database(settings.dsn("analytics"), max_size=4)
    latest_cache = LatestCache(memcached.connect(settings.memcached_url)) if settings.memcached_url else None
    latest = LatestValues(LatestStore(pool), latest_cache, database=database,
                          memcached=downstreams.get("memcached", memcached.is_transient))
    counters = Counters(pool, database, interval_s=settings.write_behind_interval_s,
                        max_keys=settings.write_behind_max_keys)
    api = AnalyticsApi(AggregateStore(pool), database=database, latest=latest, counters=counters, cache=cache,
                       redis=redis_downstream)
    return Analytics(ReadingDecoder(catalogue, resolve, gateway_check(settings, downstreams)), Aggregator(pool), api, database, cache, redis_downstream,
                     latest, counters)
