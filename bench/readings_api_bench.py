"""The readings API and `smartgrid analytics rebuild` through it, beside raw reads of the same rows.

Starts (or reuses, SMARTGRID_PG_DSN) PostgreSQL, provisions databases of its own, stores one day of
`--meters` meters' quarter-hourly readings in `smartgrid`, then in one run:

1. raw limit: `COPY (SELECT <the page's columns> ... ORDER BY ts, meter_id) TO STDOUT` of the day
   (binary, one statement, no paging, no JSON), rows/s;
2. the query in process (no HTTP): every page of the day through `ReadingQuery.page`, rows/s;
3. over HTTP: the readings function under functions-framework, every page of the day through
   `ReadingsClient` (limit 1,000 and 10,000), readings/s;
4. `smartgrid analytics rebuild` of the day through the API (fetch, catalogue check, staging COPY,
   points replaced, aggregates recomputed), readings/s, beside `Aggregator.add` of the same points in
   batches of 10,000 (the live path's work without the fetch).

Prints figures only. `.venv/bin/python bench/readings_api_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402

from local.analytics_cli import rebuild  # noqa: E402
from local.functions import Function  # noqa: E402
from local.servers.databases import drop, provision  # noqa: E402
from local.servers.postgres import postgres_server  # noqa: E402
from local.servers.process import free_port  # noqa: E402
from shared.analytics.aggregator import Aggregator  # noqa: E402
from shared.analytics.points import distinct_points  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.readings.client import ReadingsClient, is_transient  # noqa: E402
from shared.readings.query import KINDS, ReadingQuery, page_statement  # noqa: E402
from shared.readings.rows import meter_row  # noqa: E402
from shared.readings.store import METER_READINGS, ReadingStore, prepare_connection  # noqa: E402
from shared.resilience import Downstreams  # noqa: E402
from shared.stores.postgres import Database  # noqa: E402

DAY = datetime(2026, 11, 21, tzinfo=UTC)
END = DAY + timedelta(days=1)
SOURCE = REPO / "functions" / "readings" / "main.py"


def readings(meters: int) -> list[dict]:
    """One day of quarter-hourly readings of `meters` meters on 20 feeders of one region."""
    return [{"meter_id": f"m{meter:05d}", "site_id": f"s{meter}", "feeder_id": f"F{meter % 20}", "region": "north",
             "timestamp": DAY + timedelta(minutes=15 * slot),
             "registers": {"1.8.0": 1000.0 + slot * 0.3, "1.7.0": 1.2 + slot % 5 * 0.1, "32.7.0": 230.0 + slot % 3,
                           "52.7.0": 231.0, "72.7.0": 229.0}}
            for slot in range(96) for meter in range(meters)]


async def store(dsn: str, made: list[dict]) -> None:
    database = Database(dsn, configure=prepare_connection)
    rows = [meter_row(reading, f"e{i}") for i, reading in enumerate(made)]
    for i in range(0, len(rows), 10_000):
        await ReadingStore(database).write(METER_READINGS, rows[i:i + 10_000])
    await database.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE meter_readings")


async def raw_rate(dsn: str) -> float:
    """Rows/s of one binary COPY TO of the day's rows in page order (bytes received, not decoded)."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        select = psycopg.AsyncClientCursor(conn).mogrify(page_statement(KINDS["meters"], False, False),
                                                         {"low": DAY, "end": END, "limit": 10**9})
        count = (await (await conn.execute(f"SELECT count(*) FROM ({select}) AS day")).fetchone())[0]
        began = time.perf_counter()
        async with conn.cursor() as cur, cur.copy(f"COPY ({select}) TO STDOUT (FORMAT BINARY)") as copy:
            async for _ in copy:
                pass
        return count / (time.perf_counter() - began)


async def query_rate(dsn: str, limit: int) -> float:
    """Readings/s of every page of the day through ReadingQuery, in process."""
    database, rows, after = Database(dsn), 0, None
    began = time.perf_counter()
    while True:
        page = await ReadingQuery(database).page(KINDS["meters"], DAY, END, limit, after=after)
        rows += len(page.readings)
        after = page.next
        if after is None:
            break
    elapsed = time.perf_counter() - began
    await database.close()
    return rows / elapsed


async def http_rate(url: str, limit: int) -> float:
    """Readings/s of every page of the day through the readings function over HTTP."""
    downstream = Downstreams.from_settings(Settings()).get("readings", is_transient)
    async with aiohttp.ClientSession() as session:
        client, rows = ReadingsClient(url, session, downstream=downstream), 0
        began = time.perf_counter()
        async for page in client.pages("meters", DAY, END, limit=limit):
            rows += len(page)
        return rows / (time.perf_counter() - began)


async def add_rate(dsn: str, made: list[dict]) -> float:
    """Readings/s of Aggregator.add over the day's points in batches of 10,000 (fresh database)."""
    aggregator = Aggregator(Database(dsn, max_size=1))
    points = distinct_points(made)
    began = time.perf_counter()
    for i in range(0, len(points), 10_000):
        await aggregator.add(points[i:i + 10_000])
    elapsed = time.perf_counter() - began
    await aggregator.close()
    return len(points) / elapsed


@contextlib.contextmanager
def readings_function(dsn: str, state_dir: Path) -> Iterator[str]:
    port = free_port()
    process = Function("readings", SOURCE).process(port, "http://127.0.0.1:9/unused",
                                                   {"SMARTGRID_DSN_SMARTGRID": dsn}, state_dir / "readings.log")
    process.start(port)
    try:
        yield f"http://127.0.0.1:{port}/api/v1/readings"
    finally:
        process.stop()


def report(label: str, per_second: float) -> None:
    print(f"{label:<62} {per_second:>10,.0f} readings/s")


async def run(dsns: dict[str, str], url: str, meters: int) -> None:
    made = readings(meters)
    await store(dsns["smartgrid"], made)
    print(f"{len(made):,} meter readings of one day ({meters} meters, 96 quarters)")
    report("raw limit: COPY TO of the day's rows, page order, binary", await raw_rate(dsns["smartgrid"]))
    report("ReadingQuery pages in process, limit 10,000", await query_rate(dsns["smartgrid"], 10_000))
    for limit in (1_000, 10_000):
        report(f"readings API over HTTP, limit {limit:,}", await http_rate(url, limit))
    report("Aggregator.add of the same points, batches of 10,000", await add_rate(dsns["analytics"], made))
    settings = Settings(domain_dsns={"analytics": dsns["analytics"]}, readings_url=url)
    began = time.perf_counter()
    rebuilt = await rebuild(settings, DAY, END)
    report("analytics rebuild of the day through the API", rebuilt.readings / (time.perf_counter() - began))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000, help="meters, 96 readings each (default 1000)")
    options = parser.parse_args()
    settings = Settings.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    state_dir = Path(tempfile.mkdtemp(prefix="smartgrid-bench-"))
    with postgres_server(settings.pg_dsn, state_dir) as admin_dsn:
        try:
            dsns = provision(admin_dsn, prefix)
            with readings_function(dsns["smartgrid"], state_dir) as url:
                asyncio.run(run(dsns, url, options.meters))
        finally:
            drop(admin_dsn, prefix)


if __name__ == "__main__":
    main()
