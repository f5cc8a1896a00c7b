"""The rule engine's speed: observations/s of the pure engine and of `detect`'s domain path.

Uses a private redis-server (or SMARTGRID_REDIS_URL) and PostgreSQL (SMARTGRID_PG_DSN, else the
machine's or a private one) with databases of its own, and an HTTP endpoint standing in for the
broker. In the same run it measures the raw Redis limit (MSET of the same number of state-sized
values), then:

1. the pure engine: every rule over meter readings, in memory (no I/O);
2. Detector.detect over gateway batches of `--batch-size` meter readings of `--meters` meters:
   decode and check, one Redis transaction per batch (WATCH, MGET, rules, MULTI/MSET/EXEC), sweep,
   outbox; with a few anomalies so alerts are stored and published too.

Prints figures only. `.venv/bin/python bench/alerting_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.servers.databases import drop, provision  # noqa: E402
from local.servers.postgres import postgres_server  # noqa: E402
from local.servers.redis import redis_server  # noqa: E402
from shared.alerting.conditions import Context  # noqa: E402
from shared.alerting.engine import DeviceState, RuleEngine  # noqa: E402
from shared.alerting.observations import from_meter  # noqa: E402
from shared.alerting.rules import RuleSet  # noqa: E402
from shared.alerting.wiring import alerting  # noqa: E402
from shared.cloudevents import new_event  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.stores import redis  # noqa: E402

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def batches(meters: int, batch_size: int, count: int) -> list[dict[str, Any]]:
    """Gateway batch data: each batch the next 15-minute reading of `batch_size` meters, a few out of band."""
    rng = random.Random(7)
    result = []
    for number in range(count):
        first = (number * batch_size) % meters
        interval = (number * batch_size) // meters
        at = START + timedelta(minutes=15 * interval)
        readings = []
        for offset in range(batch_size):
            meter = (first + offset) % meters
            volts = 200.0 if meter % 97 == 0 else rng.gauss(231.0, 1.5)
            readings.append({
                "meter_id": f"m{meter}", "site_id": f"site{meter}", "feeder_id": f"F{meter % 20}",
                "region": "north", "timestamp": at.isoformat(),
                "registers": {"1.8.0": 1000.0 + interval * 0.3, "1.7.0": rng.uniform(0.2, 3.0),
                              "32.7.0": volts, "52.7.0": rng.gauss(231.0, 1.5), "72.7.0": rng.gauss(231.0, 1.5)},
            })
        result.append({"gateway_id": f"gw{number % 20}", "readings": readings})
    return result


def engine_rate(rules: RuleSet, data: list[dict[str, Any]]) -> float:
    """Observations/s of the pure engine over the batches' readings."""
    engine, states = RuleEngine(rules), {}
    observations = [from_meter(_typed(reading)) for batch in data for reading in batch["readings"]]
    began = time.perf_counter()
    for observation in observations:
        state = states.setdefault(observation.device_id, DeviceState(observation.device_id))
        engine.observe(state, observation, Context())
    return len(observations) / (time.perf_counter() - began)


def _typed(reading: dict[str, Any]) -> dict[str, Any]:
    return {**reading, "timestamp": datetime.fromisoformat(reading["timestamp"])}


async def redis_mset_rate(url: str, values: int, size: int) -> float:
    """Keys/s of MSET with values of `size` bytes, in chunks of 1,000: the raw limit beside the engine."""
    client = redis.connect(url)
    payload = b"x" * size
    began = time.perf_counter()
    for chunk in range(0, values, 1000):
        await client.mset({f"bench:raw:{key}": payload for key in range(chunk, min(chunk + 1000, values))})
    rate = values / (time.perf_counter() - began)
    await client.aclose()
    return rate


async def detect_rate(settings: Settings, data: list[dict[str, Any]]) -> tuple[float, int]:
    """Readings/s of Detector.detect over the batches, and the alert changes it published."""
    published = 0

    async def broker(request: web.Request) -> web.Response:
        nonlocal published
        published += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", broker)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    parts = alerting(Settings(**{**settings.__dict__, "sink_url": f"http://127.0.0.1:{port}/"}), "/bench")
    events = [new_event("com.smartgrid.meter.readings.batch", "/bench", f"b{n}", batch) for n, batch in enumerate(data)]
    began = time.perf_counter()
    for event in events:
        await parts.detector.detect(event)
    elapsed = time.perf_counter() - began
    await parts.close()
    await runner.cleanup()
    return sum(len(batch["readings"]) for batch in data) / elapsed, published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    env = Settings.from_env()
    rules = RuleSet.load(env.rules_file)
    data = batches(args.meters, args.batch_size, args.batches)
    readings = args.batch_size * args.batches
    prefix = f"bench{int(time.time())}_"
    with ExitStack() as stack:
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartgrid-bench-")))
        redis_url = stack.enter_context(redis_server(env.redis_url, state_dir))
        admin_dsn = stack.enter_context(postgres_server(env.pg_dsn, state_dir))
        dsns = provision(admin_dsn, prefix)
        stack.callback(drop, admin_dsn, prefix)
        settings = Settings(redis_url=redis_url, redis_prefix=f"{prefix}:", domain_dsns=dsns)
        state_bytes = len(_sample_state(rules, data))
        raw = asyncio.run(redis_mset_rate(redis_url, readings, state_bytes))
        pure = engine_rate(rules, data)
        rate, published = asyncio.run(detect_rate(settings, data))
    print(f"{readings:,} meter readings of {args.meters:,} meters in batches of {args.batch_size:,}")
    print(f"raw Redis MSET of {state_bytes}-byte values (same run): {raw:>10,.0f} keys/s")
    print(f"pure rule engine, all rules, no I/O:            {pure:>10,.0f} readings/s")
    print(f"detect (decode, Redis transaction, sweep, outbox): {rate:>7,.0f} readings/s "
          f"({rate / raw:.2f} of raw MSET), {published} alert events published")


def _sample_state(rules: RuleSet, data: list[dict[str, Any]]) -> bytes:
    """A typical device state after a few readings, serialised: the size of one Redis value."""
    engine, state = RuleEngine(rules), DeviceState("m0")
    for batch in data[: max(1, len(data) // 4)]:
        for reading in batch["readings"]:
            if reading["meter_id"] == "m1":
                engine.observe(state, from_meter(_typed(reading)), Context())
    return state.to_json()


if __name__ == "__main__":
    main()
