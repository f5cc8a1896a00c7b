"""Write-behind counters: high-rate counts kept in the process's memory, added to PostgreSQL in batches.

Counted (per UTC day of counting, in `analytics_counters`):
- `readings`, entity `meter:<id>`: the meter readings of every event aggregated (a redelivered event
  counts again: these are readings received, not distinct readings);
- `queries`, entity `<level>:<id>`: the analytics API's answered queries of a meter, feeder or region
  (buckets and latest reading).

`add` only adds to a dict in memory. A background task flushes everything pending as ONE upsert
(`value = value + delta`) every SMARTGRID_WRITE_BEHIND_INTERVAL seconds, or at once when
SMARTGRID_WRITE_BEHIND_MAX_KEYS keys are pending, through the database's downstream (retries with
backoff, circuit breaker). A flush that still fails puts its deltas back, merged with those counted
meanwhile, for the next flush. `close` (orderly shutdown: the function's SIGTERM, see shared/shutdown.py)
flushes everything pending, and from then on every count is written through before its request ends.

A crash (SIGKILL, OOM) loses what was counted since the last successful flush: at most one interval
while the database answers (more while it does not, up to the breaker's recovery). A connection lost
while a flush commits may count that flush twice (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from prometheus_client import Counter
from psycopg.rows import dict_row

from shared.resilience import Downstream
from shared.stores.postgres import Database

log = logging.getLogger("smartgrid.analytics")

READINGS = "readings"
QUERIES = "queries"
FLUSHES = Counter(
    "smartgrid_analytics_write_behind_flushes_total",
    "Flushes of the write-behind counters to PostgreSQL, by outcome: ok or failed (deltas kept pending).",
    ["outcome"],
)
_UPSERT = """
INSERT INTO analytics_counters AS c (counter, entity, day, value)
SELECT * FROM unnest(%s::text[], %s::text[], %s::date[], %s::int8[])
ON CONFLICT (counter, entity, day) DO UPDATE SET value = c.value + excluded.value, updated_at = now()
"""
_COUNTS = "SELECT counter, day, value FROM analytics_counters WHERE entity = %s ORDER BY day DESC, counter"

Key = tuple[str, str, date]


class Counters:
    """Per-process counters of (counter, entity, UTC day), written behind to `analytics_counters`."""

    def __init__(self, database: Database, downstream: Downstream, *, interval_s: float, max_keys: int) -> None:
        self._database = database
        self._downstream = downstream
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._pending: defaultdict[Key, int] = defaultdict(int)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """How many keys wait for the next flush."""
        return len(self._pending)

    async def add(self, counter: str, counts: Mapping[str, int]) -> None:
        """Count `counts` (entity -> amount) under `counter` today; written through once closed."""
        day = datetime.now(UTC).date()
        for entity, amount in counts.items():
            self._pending[(counter, entity, day)] += amount
        if self._closed:
            await self._flush_logged()
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if len(self._pending) >= self._max_keys:
            self._wake.set()

    async def flush(self) -> None:
        """Write every pending delta in one upsert; when that fails, keep the deltas pending and raise."""
        taken, self._pending = self._pending, defaultdict(int)
        if not taken:
            return
        try:
            await self._downstream.call(lambda: self._upsert(taken), what=f"flush {len(taken)} counters")
        except Exception:
            for key, amount in taken.items():
                self._pending[key] += amount
            FLUSHES.labels("failed").inc()
            raise
        FLUSHES.labels("ok").inc()

    async def close(self) -> None:
        """Flush everything pending and write later counts through; raises when the last flush fails."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def counts(self, entity: str) -> list[dict[str, Any]]:
        """The flushed counts of one entity (`<level>:<id>`), newest day first."""
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_COUNTS, [entity])
            return await cur.fetchall()

    async def _run(self) -> None:
        """Flush every interval, or when woken, until closed."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            await self._flush_logged()

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as error:
            log.warning("write-behind flush failed, %d counter keys kept pending: %s", len(self._pending), error)

    async def _upsert(self, deltas: Mapping[Key, int]) -> None:
        keys = list(deltas)
        async with self._database.connection() as conn:
            await conn.execute(_UPSERT, [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                                         [deltas[k] for k in keys]])
