"""The latest reading of each meter: a hot small value in memcached, never stale and never going back.

The latest reading is the meter's point with the greatest time in `meter_register_points`; the
database is the truth and memcached holds a copy under `smartgrid:latest:<hash of the meter id>`
(no expiry; memcached may evict it or restart empty, which only costs a miss).

Why a cached value is never older than the database's once a write or a read has finished:
- The latest-by-time only grows: points are never deleted and a late point (earlier time) does not
  change it. So "newer" is just "greater `ts`", and a cached value can be merged towards the truth.
- Writes (`written`) run after the batch's transaction committed and touch only the hot meters, those
  with a cached value (one multi-get per MULTI_GET_KEYS meters; a meter nobody reads costs no more):
  they read those meters' latest points from the database, then merge each into memcached with
  gets/cas: replace only when the new `ts` is later, retry when the cas token moved (someone else
  stored meanwhile), `add` when the key vanished meanwhile. Every store is therefore conditional on
  what it replaces, so concurrent batches, late readings and redeliveries can only move the value
  forward, and the last merge to finish leaves the maximum. A meter not cached at the writer's
  multi-get needs nothing: a reader that cached an older value before it did so with `add` before
  its second database read (below), which then either saw the commit or came before it, in which
  case the `add` came before the multi-get, which found the key.
- A miss (`read`) fills from the database with `add`, which stores only into an absent key, so a
  reader that read an older value before a write committed can never overwrite the writer's newer
  merge. One gap remains: the writer's value vanishing (eviction, restart) between the writer's merge
  and the reader's `add`. So after a successful `add` the reader reads the database again and merges
  what it finds; anything committed before the `add` is then in memcached.
- Every round of the cas loop that fails does so because another store succeeded, so the loop ends.
- A write-through that fails (memcached unreachable after retries) fails the event, like the Redis
  answer cache; its redelivery writes through again.

Lookups are counted in `smartgrid_analytics_latest_requests_total{outcome="hit"|"miss"|"error"}`;
the hit ratio is hit / (hit + miss + error). A memcached failure on a read only costs the cache: the
answer comes from the database and a warning is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiomcache
import orjson
from prometheus_client import Counter

from shared.resilience import CircuitOpen, Downstream
from shared.stores.memcached import is_transient as memcached_transient
from shared.stores.postgres import Database

log = logging.getLogger("smartgrid.analytics")

KEY_PREFIX = b"smartgrid:latest:"
MULTI_GET_KEYS = 100  # keys per multi-get of a write-through
LOOKUPS = Counter(
    "smartgrid_analytics_latest_requests_total",
    "Lookups of meters' latest readings in memcached, by outcome: hit, miss or error (memcached unavailable).",
    ["outcome"],
)
_LATEST = """
SELECT m.id, p.ts, p.import_kwh, p.power_kw, p.voltage_v
FROM unnest(%s::text[]) AS m(id)
CROSS JOIN LATERAL (SELECT ts, import_kwh, power_kw, voltage_v FROM meter_register_points AS x
                    WHERE x.meter_id = m.id ORDER BY x.ts DESC LIMIT 1) AS p
"""


class CacheUnavailable(RuntimeError):
    """Raised when a write-through to memcached failed after retries: the event is retried (503)."""


@dataclass(frozen=True)
class Latest:
    """One meter's latest reading: its time, import register, power and mean voltage."""

    meter_id: str
    ts: datetime
    import_kwh: float
    power_kw: float | None
    voltage_v: float | None

    def encode(self) -> bytes:
        """The JSON the API answers and memcached holds."""
        return orjson.dumps(self)

    @classmethod
    def decode(cls, raw: bytes) -> Latest:
        """The reading of `encode`'s JSON."""
        fields = orjson.loads(raw)
        return cls(**{**fields, "ts": datetime.fromisoformat(fields["ts"])})


class LatestStore:
    """Meters' latest points in the `analytics` database (one index lookup per meter)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def of(self, meters: Sequence[str]) -> dict[str, Latest]:
        """Meter id -> its latest reading, for the meters that have one."""
        async with self._database.connection() as conn, conn.cursor() as cur:
            await cur.execute(_LATEST, [list(meters)])
            return {row[0]: Latest(*row) for row in await cur.fetchall()}


class LatestCache:
    """Meters' latest readings in memcached, only ever moved forward."""

    def __init__(self, client: aiomcache.Client) -> None:
        self._client = client

    async def close(self) -> None:
        """Close the memcached connections."""
        await self._client.close()

    async def get(self, meter: str) -> bytes | None:
        """The cached reading of `meter` (counted as a hit or a miss)."""
        raw = await self._client.get(_key(meter))
        LOOKUPS.labels("miss" if raw is None else "hit").inc()
        return raw

    async def fill(self, value: Latest) -> bool:
        """Store `value` only if nothing is cached for its meter; True when stored."""
        return await self._client.add(_key(value.meter_id), value.encode())

    async def merge(self, value: Latest) -> None:
        """Cache `value` unless a reading at least as late is cached (compare-and-set, retried)."""
        key, body = _key(value.meter_id), value.encode()
        while True:
            raw, token = await self._client.gets(key)
            if raw is None:
                if await self._client.add(key, body):
                    return
            elif Latest.decode(raw).ts >= value.ts or await self._client.cas(key, body, token):
                return

    async def cached(self, meters: Sequence[str]) -> list[str]:
        """The meters among `meters` whose latest reading is cached (not counted as lookups)."""
        hot: list[str] = []
        for start in range(0, len(meters), MULTI_GET_KEYS):
            chunk = meters[start:start + MULTI_GET_KEYS]
            values = await self._client.multi_get(*(_key(meter) for meter in chunk))
            hot.extend(meter for meter, value in zip(chunk, values, strict=True) if value is not None)
        return hot

    async def merge_all(self, values: Iterable[Latest]) -> None:
        """Merge every value, as many at once as the client has connections."""
        await asyncio.gather(*(self.merge(value) for value in values))


class LatestValues:
    """The latest reading of each meter: memcached when it has it, else the database (then cached)."""

    def __init__(self, store: LatestStore, cache: LatestCache | None, *, database: Downstream,
                 memcached: Downstream) -> None:
        self._store = store
        self._cache = cache
        self._database = database
        self._memcached = memcached

    async def close(self) -> None:
        """Close the memcached client."""
        if self._cache is not None:
            await self._cache.close()

    async def read(self, meter: str) -> bytes | None:
        """The JSON of `meter`'s latest reading, None when it has none; database errors are raised."""
        cache = self._cache
        if cache is not None:
            cached = await self._cached(lambda: cache.get(meter), None, lookup=True)
            if cached is not None:
                return cached
        value = (await self._database.call(lambda: self._store.of([meter]), what="read latest reading")).get(meter)
        if value is None or cache is None or not await self._cached(lambda: cache.fill(value), False):
            return value.encode() if value is not None else None
        confirmed = (await self._database.call(lambda: self._store.of([meter]), what="read latest reading"))[meter]
        if confirmed.ts > value.ts:
            await self._cached(lambda: cache.merge(confirmed), None)
        return confirmed.encode()

    async def written(self, meters: Iterable[str]) -> None:
        """After a batch committed: move each hot meter's cached latest reading forward to the database's;
        raises CacheUnavailable when memcached cannot be reached."""
        cache = self._cache
        if cache is None:
            return
        batch = sorted(set(meters))
        try:
            hot = await self._memcached.call(lambda: cache.cached(batch), what="find cached latest readings")
            if not hot:
                return
            found = await self._database.call(lambda: self._store.of(hot), what="read latest readings")
            await self._memcached.call(lambda: cache.merge_all(found.values()), what="write latest readings through")
        except Exception as error:
            if memcached_transient(error):
                raise CacheUnavailable(f"memcached unavailable, latest readings not written through: {error}") from error
            raise

    async def _cached(self, call: Callable[[], Awaitable[Any]], otherwise: Any, *, lookup: bool = False) -> Any:
        """The result of a memcached call on the read path, or `otherwise` when memcached fails (logged;
        counted as an error when the call is the `lookup`)."""
        try:
            return await self._memcached.call(call, what="latest reading cache")
        except Exception as error:
            if not isinstance(error, CircuitOpen) and not memcached_transient(error):
                raise
            if lookup:
                LOOKUPS.labels("error").inc()
            log.warning("latest reading cache unavailable, answering from the database: %s", error)
            return otherwise


def _key(meter: str) -> bytes:
    """The memcached key of a meter: a hash, since memcached keys exclude spaces and stop at 250 bytes."""
    return KEY_PREFIX + hashlib.blake2b(meter.encode(), digest_size=16).hexdigest().encode()
