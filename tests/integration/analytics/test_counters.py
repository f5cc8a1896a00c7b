"""Write-behind counters on the real PostgreSQL: batched flushes, retried failures, everything flushed on close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shared.analytics.counters import QUERIES, READINGS, Counters
from shared.config import Settings
from shared.resilience import Downstreams
from shared.stores import postgres
from shared.stores.postgres import Database

pytestmark = pytest.mark.integration


@pytest.fixture
async def counters_of(domain_dsns: dict[str, str]) -> AsyncIterator[Callable[..., Counters]]:
    """Makes counters on this session's analytics database (lock waits end after 200 ms); closes them."""
    made: list[tuple[Counters, Database]] = []

    def make(interval_s: float = 3600.0, max_keys: int = 1000) -> Counters:
        database = Database(make_conninfo(domain_dsns["analytics"], options="-c lock_timeout=200"))
        settings = Settings(retry_attempts=2, retry_initial_delay_s=0.01)
        downstream = Downstreams.from_settings(settings).get("postgres:analytics", postgres.is_transient)
        made.append((Counters(database, downstream, interval_s=interval_s, max_keys=max_keys), database))
        return made[-1][0]

    yield make
    for counters, database in made:
        await counters.close()
        await database.close()


def stored(dsn: str, entity: str) -> dict[str, int]:
    """Counter -> today's flushed value of one entity."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT counter, value FROM analytics_counters WHERE entity = %s AND day = %s",
                            [entity, datetime.now(UTC).date()]).fetchall()
    return dict(rows)


async def until(predicate: Callable[[], bool]) -> None:
    """Poll `predicate` (in a thread) until true; the test's own timeout ends a wait that never succeeds."""
    while not await asyncio.to_thread(predicate):
        await asyncio.sleep(0.05)


async def test_counts_wait_in_memory_until_a_flush_writes_them_all(counters_of, domain_dsns) -> None:
    counters, meter = counters_of(), f"meter:m-{uuid.uuid4().hex[:6]}"
    for _ in range(50):
        await counters.add(READINGS, {meter: 3})
        await counters.add(QUERIES, {meter: 1})
    assert stored(domain_dsns["analytics"], meter) == {} and counters.pending == 2
    await counters.flush()
    await counters.add(READINGS, {meter: 2})
    await counters.flush()
    assert stored(domain_dsns["analytics"], meter) == {READINGS: 152, QUERIES: 50} and counters.pending == 0
    assert [(row["counter"], row["value"]) for row in await counters.counts(meter)] == [(QUERIES, 50), (READINGS, 152)]


async def test_the_interval_and_max_keys_start_flushes(counters_of, domain_dsns) -> None:
    timed, meter = counters_of(interval_s=0.1), f"meter:m-{uuid.uuid4().hex[:6]}"
    await timed.add(READINGS, {meter: 7})
    await until(lambda: stored(domain_dsns["analytics"], meter) == {READINGS: 7})
    full, entities = counters_of(max_keys=3), [f"meter:m-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    await full.add(READINGS, {entity: 1 for entity in entities})
    await until(lambda: all(stored(domain_dsns["analytics"], entity) == {READINGS: 1} for entity in entities))


async def test_a_failed_flush_keeps_its_deltas_for_the_next_one(counters_of, domain_dsns) -> None:
    counters, meter = counters_of(), f"meter:m-{uuid.uuid4().hex[:6]}"
    await counters.add(READINGS, {meter: 5})
    with psycopg.connect(domain_dsns["analytics"]) as blocker:
        blocker.execute("LOCK TABLE analytics_counters IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await counters.flush()  # both attempts wait for the lock in vain
        await counters.add(READINGS, {meter: 4})
        assert counters.pending == 1
    await counters.flush()
    assert stored(domain_dsns["analytics"], meter) == {READINGS: 9}


async def test_close_flushes_everything_and_later_counts_are_written_through(counters_of, domain_dsns) -> None:
    counters, meter = counters_of(), f"meter:m-{uuid.uuid4().hex[:6]}"
    await counters.add(QUERIES, {meter: 2})
    await counters.close()
    assert stored(domain_dsns["analytics"], meter) == {QUERIES: 2}
    await counters.add(QUERIES, {meter: 1})
    assert stored(domain_dsns["analytics"], meter) == {QUERIES: 3} and counters.pending == 0
