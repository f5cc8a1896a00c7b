"""Analytics: aggregation of gateway batches and the query API, beside raw COPY of the same points.

Starts (or reuses, SMARTGRID_PG_DSN) PostgreSQL, provisions databases of its own, then in one run:

1. raw limit: binary COPY of the same points into an unlogged table (no aggregation);
2. aggregation: `--batches` gateway batches of `--batch-size` meter readings (96 quarter hours per
   meter, 20 feeders, one region) in time order through `Aggregator.add`, readings/s; then the same
   number of late readings (a second, shifted point per quarter) in shuffled batches;
3. the query API in process (no HTTP, no Redis): `--requests` GETs of random meters, feeders and the
   region, hourly over the day; requests/s and p50/p99 latency.

Prints figures only. `.venv/bin/python bench/analytics_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from starlette.requests import Request  # noqa: E402

from local.servers.databases import drop, provision  # noqa: E402
from local.servers.postgres import postgres_server  # noqa: E402
from shared.analytics.aggregator import Aggregator  # noqa: E402
from shared.analytics.api import AnalyticsApi  # noqa: E402
from shared.analytics.points import Point  # noqa: E402
from shared.analytics.store import AggregateStore  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.resilience import Downstreams  # noqa: E402
from shared.stores import postgres  # noqa: E402
from shared.stores.postgres import Database  # noqa: E402

DAY = datetime(2026, 11, 21, tzinfo=UTC)


def points(count: int, offset_min: int = 0) -> list[Point]:
    """`count` points: meters of 96 quarter hours each, rising registers, on 20 feeders of one region."""
    made = []
    for i in range(count):
        meter, slot = divmod(i, 96)
        made.append(Point(f"m{meter}", DAY + timedelta(minutes=15 * slot + offset_min), f"F{meter % 20}", "north",
                          1000.0 + slot * 0.3 + offset_min * 0.01, 1.2 + (slot % 5) * 0.1, 230.0 + slot % 3))
    return made


async def copy_rate(dsn: str, items: list[Point]) -> float:
    """Points/s of a binary COPY into an unlogged table shaped like meter_register_points."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute("CREATE UNLOGGED TABLE bench_copy (LIKE meter_register_points)")
        began = time.perf_counter()
        async with conn.cursor() as cur, cur.copy(
            "COPY bench_copy (meter_id, ts, feeder_id, region, import_kwh, power_kw, voltage_v) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "timestamptz", "text", "text", "float8", "float8", "float8"])
            for p in items:
                await copy.write_row((p.meter_id, p.ts, p.feeder_id, p.region, p.import_kwh, p.power_kw, p.voltage_v))
        await conn.commit()
        rate = len(items) / (time.perf_counter() - began)
        await conn.execute("DROP TABLE bench_copy")
        await conn.commit()
        return rate


async def aggregate_rate(aggregator: Aggregator, batches: list[list[Point]]) -> float:
    """Readings/s through the aggregator, one batch after another."""
    began = time.perf_counter()
    for batch in batches:
        await aggregator.add(batch)
    return sum(map(len, batches)) / (time.perf_counter() - began)


async def api_latencies(api: AnalyticsApi, meters: int, requests: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of GETs of random entities' hourly buckets over the day."""
    rng = random.Random(7)
    query = f"bucket=hour&from={DAY.isoformat()}&to={(DAY + timedelta(days=1)).isoformat()}".replace("+", "%2B")
    latencies = []
    began = time.perf_counter()
    for _ in range(requests):
        path = rng.choice([f"meters/m{rng.randrange(meters)}", f"feeders/F{rng.randrange(20)}", "regions/north"])
        request = Request({"type": "http", "method": "GET", "path": f"/api/v1/analytics/{path}",
                           "query_string": query.encode(), "headers": []})
        sent = time.perf_counter()
        response = await api(request)
        latencies.append(time.perf_counter() - sent)
        assert response.status_code == 200, response.body
    return requests / (time.perf_counter() - began), latencies


async def run(dsn: str, options: argparse.Namespace) -> None:
    total = options.batches * options.batch_size
    in_order = points(total)
    late = points(total, offset_min=7)
    random.Random(3).shuffle(late)
    print(f"raw COPY (unlogged, no aggregation): {await copy_rate(dsn, in_order):,.0f} points/s")
    database = Database(dsn, max_size=2)
    try:
        aggregator = Aggregator(database)
        size = options.batch_size
        rate = await aggregate_rate(aggregator, [in_order[i:i + size] for i in range(0, total, size)])
        print(f"aggregation, batches of {size:,} in time order: {rate:,.0f} readings/s ({total:,} readings)")
        rate = await aggregate_rate(aggregator, [late[i:i + size] for i in range(0, total, size)])
        print(f"aggregation, late readings in shuffled batches of {size:,}: {rate:,.0f} readings/s")
        downstream = Downstreams.from_settings(Settings()).get("postgres:analytics", postgres.is_transient)
        api = AnalyticsApi(AggregateStore(database), database=downstream)
        per_second, latencies = await api_latencies(api, total // 96, options.requests)
        cuts = statistics.quantiles(latencies, n=100)
        print(f"query API in process (hourly, one day): {per_second:,.0f} requests/s, "
              f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms")
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="gateway batches (default 20)")
    parser.add_argument("--batch-size", type=int, default=1000, help="readings per batch (default 1000)")
    parser.add_argument("--requests", type=int, default=2000, help="API requests (default 2000)")
    options = parser.parse_args()
    settings = Settings.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    with postgres_server(settings.pg_dsn, Path(tempfile.mkdtemp(prefix="smartgrid-bench-"))) as admin_dsn:
        try:
            dsn = provision(admin_dsn, prefix)["analytics"]
            asyncio.run(run(dsn, options))
        finally:
            drop(admin_dsn, prefix)


if __name__ == "__main__":
    main()
