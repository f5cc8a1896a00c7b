"""Analytics: aggregation of gateway batches and the query API, beside raw COPY of the same points.

Starts (or reuses, SMARTGRID_PG_DSN) PostgreSQL, provisions databases of its own, then in one run:

1. raw limit: binary COPY of the same points into an unlogged table (no aggregation);
2. aggregation: `--batches` gateway batches of `--batch-size` meter readings (96 quarter hours per
   meter, 20 feeders, one region) in time order through `Aggregator.add`, readings/s: meter after meter,
   then as a gateway stream (other meters, every meter's reading of a quarter before the next quarter's);
   then the same number of late readings (a second, shifted point per quarter of the first meters) in
   shuffled batches. `--aggregation-only` stops there;
3. the query API in process (no HTTP, no Redis): `--requests` GETs of random meters, feeders and the
   region, hourly over the day; requests/s and p50/p99 latency;
4. the query API over HTTP: the analytics function under functions-framework (its own Redis, or
   SMARTGRID_REDIS_URL), `--http-requests` GETs with `--concurrency` in flight over a mix of meters,
   feeders and the region, 15min/hour/day buckets, the day or one of its 6-hour quarters: first with a
   cold cache (the bench's Redis prefix flushed), then warm (the same mix again); requests/s, p50/p99
   latency and the hit ratio from the function's /metrics, beside GET /healthz of the same server;
5. the latest-reading endpoint over HTTP (`GET .../meters/{id}/latest`, memcached: its own or
   SMARTGRID_MEMCACHED_URL): cold (this run's meters were never cached), then warm; requests/s, p50/p99
   and the memcached hit ratio, beside the raw memcached get rate of one client in this process.

Prints figures only. `.venv/bin/python bench/analytics_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from starlette.requests import Request  # noqa: E402

from local.functions import Function  # noqa: E402
from local.servers.databases import drop, provision  # noqa: E402
from local.servers.memcached import memcached_server  # noqa: E402
from local.servers.postgres import postgres_server  # noqa: E402
from local.servers.process import free_port  # noqa: E402
from local.servers.redis import redis_server  # noqa: E402
from shared.analytics.aggregator import BUCKETS, Aggregator  # noqa: E402
from shared.analytics.api import AnalyticsApi  # noqa: E402
from shared.analytics.counters import Counters  # noqa: E402
from shared.analytics.latest import LatestStore, LatestValues  # noqa: E402
from shared.analytics.points import Point  # noqa: E402
from shared.analytics.store import AggregateStore  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.resilience import Downstreams  # noqa: E402
from shared.stores import memcached, postgres, redis  # noqa: E402
from shared.stores.postgres import Database  # noqa: E402

DAY = datetime(2026, 11, 21, tzinfo=UTC)
SOURCE = REPO / "functions" / "analytics" / "main.py"
WINDOWS = [(DAY, DAY + timedelta(days=1))] + [(DAY + timedelta(hours=h), DAY + timedelta(hours=h + 6))
                                             for h in range(0, 24, 6)]


def points(count: int, meter_prefix: str, offset_min: int = 0) -> list[Point]:
    """`count` points: meters of 96 quarter hours each, rising registers, on 20 feeders of one region."""
    made = []
    for i in range(count):
        meter, slot = divmod(i, 96)
        made.append(Point(f"{meter_prefix}m{meter}", DAY + timedelta(minutes=15 * slot + offset_min), f"F{meter % 20}", "north",
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


async def api_latencies(api: AnalyticsApi, meters: list[str], requests: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of GETs of random entities' hourly buckets over the day."""
    rng = random.Random(7)
    query = f"bucket=hour&from={DAY.isoformat()}&to={(DAY + timedelta(days=1)).isoformat()}".replace("+", "%2B")
    latencies = []
    began = time.perf_counter()
    for _ in range(requests):
        path = rng.choice([f"meters/{rng.choice(meters)}", f"feeders/F{rng.randrange(20)}", "regions/north"])
        request = Request({"type": "http", "method": "GET", "path": f"/api/v1/analytics/{path}",
                           "query_string": query.encode(), "headers": []})
        sent = time.perf_counter()
        response = await api(request)
        latencies.append(time.perf_counter() - sent)
        assert response.status_code == 200, response.body
    return requests / (time.perf_counter() - began), latencies


def report(label: str, per_second: float, latencies: list[float], extra: str = "") -> None:
    """Print requests/s and p50/p99 latency of one measurement."""
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{label}: {per_second:,.0f} requests/s, p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms{extra}")


def key_mix(meters: list[str], requests: int) -> list[str]:
    """`requests` API paths: 60 % meters, 30 % feeders, 10 % the region, any bucket, the day or a quarter of it."""
    rng = random.Random(11)
    paths = []
    for _ in range(requests):
        entity = rng.choices([f"meters/{rng.choice(meters)}", f"feeders/F{rng.randrange(20)}", "regions/north"],
                             weights=[6, 3, 1])[0]
        start, end = rng.choice(WINDOWS)
        query = urlencode({"bucket": rng.choice(list(BUCKETS)), "from": start.isoformat(), "to": end.isoformat()})
        paths.append(f"/api/v1/analytics/{entity}?{query}")
    return paths


async def http_pass(session: aiohttp.ClientSession, base: str, paths: list[str],
                    concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of GETs of `paths`, `concurrency` in flight."""
    pending = iter(paths)
    latencies: list[float] = []

    async def worker() -> None:
        for path in pending:
            sent = time.perf_counter()
            async with session.get(base + path) as response:
                body = await response.read()
                assert response.status == 200, body
            latencies.append(time.perf_counter() - sent)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(paths) / (time.perf_counter() - began), latencies


async def lookups(session: aiohttp.ClientSession, base: str, metric: str) -> dict[str, float]:
    """The function's lookups of one cache so far by outcome, from its /metrics."""
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == metric}


def hit_ratio(before: dict[str, float], after: dict[str, float]) -> float:
    """Hits over all lookups between two readings of the counters."""
    moved = {outcome: after[outcome] - before.get(outcome, 0.0) for outcome in after}
    return moved.get("hit", 0.0) / max(sum(moved.values()), 1.0)


async def flush(redis_url: str, prefix: str) -> None:
    """Delete every key under the bench's Redis prefix: a cold cache."""
    client = redis.connect(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def memcached_get_rate(url: str, requests: int, concurrency: int) -> float:
    """Gets/s of one hot key from one client of this process, `concurrency` in flight: the raw limit."""
    client = memcached.connect(url, pool_size=concurrency)
    try:
        await client.set(b"smartgrid:bench:hot", b'{"ts": "2026-11-21T00:00:00+00:00", "import_kwh": 1.0}')
        pending = iter(range(requests))

        async def worker() -> None:
            for _ in pending:
                await client.get(b"smartgrid:bench:hot")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - began)
    finally:
        await client.close()


async def latest_bench(base: str, memcached_url: str, meters: list[str], options: argparse.Namespace) -> None:
    """The latest-reading endpoint over HTTP, cold then warm memcached, beside the raw memcached get rate."""
    rng, concurrency = random.Random(13), options.concurrency
    paths = [f"/api/v1/analytics/meters/{rng.choice(meters)}/latest" for _ in range(options.http_requests)]
    rate = await memcached_get_rate(memcached_url, options.http_requests, concurrency)
    print(f"raw limit, memcached get of one key ({concurrency} in flight, one client): {rate:,.0f} gets/s")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        for label in ("cold", "warm"):
            before = await lookups(session, base, "smartgrid_analytics_latest_requests_total")
            per_second, latencies = await http_pass(session, base, paths, concurrency)
            ratio = hit_ratio(before, await lookups(session, base, "smartgrid_analytics_latest_requests_total"))
            report(f"latest reading over HTTP, {label} memcached", per_second, latencies, f", hit ratio {ratio:.0%}")


async def http_bench(base: str, redis_url: str, prefix: str, meters: list[str], options: argparse.Namespace) -> None:
    """The query API over HTTP, cold then warm cache, beside GET /healthz of the same server."""
    paths, concurrency = key_mix(meters, options.http_requests), options.concurrency
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        report(f"raw limit, GET /healthz ({concurrency} in flight)",
               *await http_pass(session, base, ["/healthz"] * len(paths), concurrency))
        await flush(redis_url, prefix)
        for label in ("cold", "warm"):
            before = await lookups(session, base, "smartgrid_analytics_cache_requests_total")
            per_second, latencies = await http_pass(session, base, paths, concurrency)
            ratio = hit_ratio(before, await lookups(session, base, "smartgrid_analytics_cache_requests_total"))
            report(f"query API over HTTP, {label} cache", per_second, latencies, f", hit ratio {ratio:.0%}")


@contextlib.contextmanager
def analytics_function(dsn: str, redis_url: str, prefix: str, memcached_url: str, state_dir: Path) -> Iterator[str]:
    """The base URL of the analytics function served by functions-framework on this database, Redis prefix
    and memcached."""
    port = free_port()
    env = {"SMARTGRID_DSN_ANALYTICS": dsn, "SMARTGRID_REDIS_URL": redis_url, "SMARTGRID_REDIS_PREFIX": prefix,
           "SMARTGRID_MEMCACHED_URL": memcached_url}
    process = Function("analytics", SOURCE).process(port, "http://127.0.0.1:9/", env, state_dir / "analytics.log")
    process.start(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


async def run(dsn: str, base: str, redis_url: str, prefix: str, memcached_url: str,
              options: argparse.Namespace) -> None:
    total = options.batches * options.batch_size
    in_order = points(total, prefix)
    late = points(total, prefix, offset_min=7)
    meters = sorted({p.meter_id for p in in_order})
    random.Random(3).shuffle(late)
    print(f"raw COPY (unlogged, no aggregation): {await copy_rate(dsn, in_order):,.0f} points/s")
    database = Database(dsn, max_size=2)
    try:
        aggregator = Aggregator(database)
        size = options.batch_size
        rate = await aggregate_rate(aggregator, [in_order[i:i + size] for i in range(0, total, size)])
        print(f"aggregation, batches of {size:,} in time order, meter after meter: {rate:,.0f} readings/s "
              f"({total:,} readings)")
        stream = sorted(points(total, f"{prefix}g"), key=lambda p: p.ts)
        rate = await aggregate_rate(aggregator, [stream[i:i + size] for i in range(0, total, size)])
        print(f"aggregation, batches of {size:,} in time order, quarter after quarter: {rate:,.0f} readings/s")
        rate = await aggregate_rate(aggregator, [late[i:i + size] for i in range(0, total, size)])
        print(f"aggregation, late readings in shuffled batches of {size:,}: {rate:,.0f} readings/s")
        if options.aggregation_only:
            return
        downstreams = Downstreams.from_settings(Settings())
        downstream = downstreams.get("postgres:analytics", postgres.is_transient)
        latest = LatestValues(LatestStore(database), None, database=downstream,
                              memcached=downstreams.get("memcached", memcached.is_transient))
        counters = Counters(database, downstream, interval_s=1.0, max_keys=1000)
        api = AnalyticsApi(AggregateStore(database), database=downstream, latest=latest, counters=counters)
        report("query API in process (hourly, one day)", *await api_latencies(api, meters, options.requests))
        await counters.close()
    finally:
        await database.close()
    await http_bench(base, redis_url, prefix, meters, options)
    await latest_bench(base, memcached_url, meters, options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="gateway batches (default 20)")
    parser.add_argument("--batch-size", type=int, default=1000, help="readings per batch (default 1000)")
    parser.add_argument("--requests", type=int, default=2000, help="API requests in process (default 2000)")
    parser.add_argument("--http-requests", type=int, default=2000, help="API requests over HTTP per pass (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight (default 16)")
    parser.add_argument("--aggregation-only", action="store_true", help="stop after the aggregation figures")
    options = parser.parse_args()
    settings = Settings.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    state_dir = Path(tempfile.mkdtemp(prefix="smartgrid-bench-"))
    with (postgres_server(settings.pg_dsn, state_dir) as admin_dsn,
          redis_server(settings.redis_url, state_dir) as redis_url,
          memcached_server(settings.memcached_url, state_dir) as memcached_url):
        try:
            dsn = provision(admin_dsn, prefix)["analytics"]
            keys = prefix.replace("_", ":")
            with analytics_function(dsn, redis_url, keys, memcached_url, state_dir) as base:
                asyncio.run(run(dsn, base, redis_url, keys, memcached_url, options))
        finally:
            drop(admin_dsn, prefix)


if __name__ == "__main__":
    main()
