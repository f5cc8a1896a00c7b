"""The analytics API behind `/api/v1/analytics`: buckets, latest readings and counts of meters, feeders, regions.

| method | path                                                               | answer                        |
|--------|--------------------------------------------------------------------|-------------------------------|
| GET    | /api/v1/analytics/{meters,feeders,regions}/{id}?from=&to=&bucket=  | buckets, oldest first         |
| GET    | /api/v1/analytics/meters/{id}/latest                               | the meter's latest reading    |
| GET    | /api/v1/analytics/{meters,feeders,regions}/{id}/counters           | counts per day, newest first  |

`from` and `to` are RFC 3339 times with offset (default: the 24 hours before now), buckets starting
in [from, to); `bucket` is 15min, hour (default) or day. Bucket answers carry `Cache-Control:
max-age=300` and are cached in Redis when it is configured (shared/analytics/cache.py); latest
readings are cached in memcached when it is configured (shared/analytics/latest.py); a cache failure
only costs the cache. Counters (shared/analytics/counters.py: `readings` of a meter, `queries` of any
entity) are those flushed so far, up to one write-behind interval behind.
Errors are JSON bodies naming the parameter: 400 bad parameter, 404 unknown path or a meter without
readings, 405 other methods, 503 database unavailable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.analytics.aggregator import BUCKETS
from shared.analytics.cache import AnswerCache
from shared.analytics.counters import QUERIES, Counters
from shared.analytics.latest import LatestValues
from shared.analytics.store import AggregateStore
from shared.http import downstream_failure, json_error
from shared.params import BadParameter, time_param
from shared.resilience import CircuitOpen, Downstream
from shared.stores.redis import is_transient as redis_transient

log = logging.getLogger("smartgrid.analytics")

PREFIX = "/api/v1/analytics"
CACHE_CONTROL = "max-age=300"
NO_CACHE = "no-cache"
MAX_BUCKETS = 10_000
DEFAULT_RANGE = timedelta(days=1)
_ROUTE = re.compile(rf"^{PREFIX}/(?P<level>meters|feeders|regions)/(?P<id>[^/]+)(?:/(?P<view>latest|counters))?/?$")
_PATHS = f"{PREFIX}/{{meters|feeders|regions}}/{{id}}[/counters] or {PREFIX}/meters/{{id}}/latest"


class AnalyticsApi:
    """Answers the analytics API's requests; reads go through the database's downstream (retries, breaker)."""

    def __init__(self, aggregates: AggregateStore, *, database: Downstream, latest: LatestValues, counters: Counters,
                 cache: AnswerCache | None = None, redis: Downstream | None = None) -> None:
        self._aggregates = aggregates
        self._database = database
        self._latest = latest
        self._counters = counters
        self._cache = cache
        self._redis = redis

    async def __call__(self, request: Request) -> Response:
        """Answer one request."""
        match = _ROUTE.match(request.url.path)
        if match is None or (match["view"] == "latest" and match["level"] != "meters"):
            return json_error(404, "not found", f"expected {_PATHS}, found {request.url.path}", field="path")
        if request.method != "GET":
            return json_error(405, "method not allowed", f"expected GET, found {request.method}", field="method")
        level, entity = match["level"].removesuffix("s"), match["id"]
        try:
            if match["view"] == "counters":
                counts = await self._database.call(lambda: self._counters.counts(f"{level}:{entity}"),
                                                   what="read counters")
                return Response(orjson.dumps(counts), media_type="application/json", headers={"Cache-Control": NO_CACHE})
            if match["view"] == "latest":
                answer = await self._latest_reading(entity)
            else:
                answer = await self._buckets(request, level, entity)
        except Exception as error:
            failure = downstream_failure(error, path=request.url.path)
            if failure is None:
                raise
            return failure
        if answer.status_code == 200:
            await self._counters.add(QUERIES, {f"{level}:{entity}": 1})
        return answer

    async def _latest_reading(self, meter: str) -> Response:
        body = await self._latest.read(meter)
        if body is None:
            return json_error(404, "not found", f"expected a meter with readings, found none for {meter!r}", field="id")
        return Response(body, media_type="application/json", headers={"Cache-Control": NO_CACHE})

    async def _buckets(self, request: Request, level: str, entity: str) -> Response:
        try:
            bucket, start, end = query(request.query_params, datetime.now(UTC))
        except BadParameter as error:
            return json_error(400, "bad request", str(error), field=error.field)
        key, body = await self._lookup(level, entity, f"{bucket}:{start}:{end}")
        if body is None:
            rows = await self._database.call(lambda: self._aggregates.buckets(level, entity, bucket, start, end),
                                             what="read aggregates")
            body = orjson.dumps(rows)
            if key is not None:
                await self._cached(lambda: self._cache.store(key, body))
        return Response(body, media_type="application/json", headers={"Cache-Control": CACHE_CONTROL})

    async def _lookup(self, level: str, entity: str, query: str) -> tuple[str | None, bytes | None]:
        """The cache key and cached answer of a query; (None, None) without a cache or when Redis fails (counted)."""
        key, body = await self._cached(lambda: self._cache.lookup(level, entity, query))
        if key is None and self._cache is not None and self._redis is not None:
            self._cache.failed()
        return key, body

    async def _cached(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """The result of a cache call, or (None, None) without a cache or when Redis fails."""
        if self._cache is None or self._redis is None:
            return None, None
        try:
            return await self._redis.call(call, what="analytics cache")
        except Exception as error:
            if not isinstance(error, CircuitOpen) and not redis_transient(error):
                raise
            log.warning("analytics cache unavailable, answering from the database: %s", error)
            return None, None


def query(params: Any, now: datetime) -> tuple[str, datetime, datetime]:
    """The bucket and time range of a request's parameters; raises BadParameter naming one."""
    bucket = params.get("bucket", "hour")
    if bucket not in BUCKETS:
        raise BadParameter("bucket", f"expected one of {', '.join(BUCKETS)}, found {bucket!r}")
    end = time_param(params, "to") or now
    start = time_param(params, "from") or end - DEFAULT_RANGE
    if start >= end:
        raise BadParameter("from", f"expected a time before to ({end.isoformat()}), found {start.isoformat()}")
    if (end - start) / BUCKETS[bucket] > MAX_BUCKETS:
        raise BadParameter("from", f"expected a range of at most {MAX_BUCKETS} {bucket} buckets, "
                                   f"found {(end - start) / BUCKETS[bucket]:.0f}")
    return bucket, start, end
