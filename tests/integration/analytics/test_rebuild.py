"""`smartgrid analytics rebuild`: the points and aggregates of a range restored from the stored readings,
fetched through the real readings API, against a brute-force recomputation; cached answers retired."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local.analytics_cli import rebuild
from local.servers.process import free_port
from shared.analytics.aggregator import Aggregator
from shared.analytics.cache import AnswerCache
from shared.analytics.points import Point, distinct_points
from shared.analytics.store import AggregateStore
from shared.config import Settings
from shared.readings.rows import meter_row
from shared.readings.store import METER_READINGS, ReadingStore, prepare_connection
from shared.stores import redis
from shared.stores.postgres import Database
from tests.identity import ADMIN_CLIENT, Identity
from tests.integration.analytics.test_aggregates import START, check, readings
from tests.integration.readings_api.service import readings_service

pytestmark = pytest.mark.integration
SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))
DAY = START.replace(hour=0, minute=0)


@pytest.fixture(scope="module")
async def readings_url(domain_dsns: dict[str, str], identity: Identity,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The readings API of a running readings function on this session's `smartgrid` database."""
    async with readings_service(domain_dsns["smartgrid"], identity, tmp_path_factory.mktemp("readings") / "log") as url:
        yield url


async def stored_and_aggregated(database: Database, smartgrid_dsn: str, prefix: str, seed: int) -> list[Point]:
    """Readings stored by the readings domain and aggregated by analytics, as the live paths do; their points."""
    sent = readings(prefix, seed)
    source = Database(smartgrid_dsn, configure=prepare_connection)
    await ReadingStore(source).write(METER_READINGS, [meter_row(reading, f"{prefix}-{i}") for i, reading in enumerate(sent)])
    await source.close()
    points = distinct_points(sent)
    await Aggregator(database).add(points)
    return points


async def damage(database: Database, prefix: str) -> None:
    """Points lost and wrong, a point that never was, aggregates wrong and lost."""
    async with database.connection() as conn:
        await conn.execute("DELETE FROM meter_register_points WHERE meter_id = %s AND ts >= %s AND ts < %s",
                           [f"{prefix}m1", START + timedelta(hours=3), START + timedelta(hours=6)])
        await conn.execute("UPDATE meter_register_points SET import_kwh = import_kwh + 50, power_kw = 99 "
                           "WHERE meter_id = %s AND ts >= %s AND ts < %s",
                           [f"{prefix}m2", START + timedelta(hours=10), START + timedelta(hours=11)])
        await conn.execute("INSERT INTO meter_register_points (meter_id, ts, feeder_id, region, import_kwh) "
                           "VALUES (%s, %s, %s, %s, 0)", [f"{prefix}m0", START + timedelta(seconds=1),
                                                          f"{prefix}A", f"{prefix}north"])
        await conn.execute("UPDATE aggregates SET energy_kwh = -1 WHERE entity_id LIKE %s", [f"{prefix}%"])
        await conn.execute("DELETE FROM aggregates WHERE entity_id LIKE %s AND bucket = 'day'", [f"{prefix}%"])


async def kept_points(database: Database, prefix: str) -> list[tuple[Any, ...]]:
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT meter_id, ts, feeder_id, region, import_kwh, power_kw, voltage_v, "
                                    "frequency_hz FROM meter_register_points WHERE meter_id LIKE %s ORDER BY meter_id, ts",
                                    [f"{prefix}%"])
        return await cursor.fetchall()


def as_rows(points: list[Point]) -> list[tuple[Any, ...]]:
    return sorted((p.meter_id, p.ts, p.feeder_id, p.region, p.import_kwh, p.power_kw, p.voltage_v, p.frequency_hz)
                  for p in points)


def admin_client(identity: Identity) -> dict[str, str]:
    """The settings of a command line acting as the session's admin service client (it reads the readings API)."""
    return {"auth_issuer": identity.issuer, "client_id": ADMIN_CLIENT, "client_secret": identity.secrets[ADMIN_CLIENT]}


async def test_rebuild_restores_points_and_aggregates_from_the_readings_api_and_retires_cached_answers(
    database: Database, domain_dsns: dict[str, str], redis_url: str, readings_url: str, identity: Identity
) -> None:
    prefix = uuid.uuid4().hex[:6]
    points = await stored_and_aggregated(database, domain_dsns["smartgrid"], prefix, seed=41)
    await damage(database, prefix)
    assert await kept_points(database, prefix) != as_rows(points)
    settings = Settings(domain_dsns={"analytics": domain_dsns["analytics"]}, redis_url=redis_url,
                        redis_prefix=f"test-{prefix}:", readings_url=readings_url, **admin_client(identity))
    cache = AnswerCache(redis.connect(redis_url), redis.Keys(settings.redis_prefix))
    stale_key, _ = await cache.lookup("feeder", f"{prefix}A", "q")
    rebuilt = await rebuild(settings, DAY, DAY + timedelta(days=3))
    assert rebuilt.readings >= len(points)
    assert {("meter", f"{prefix}m0"), ("feeder", f"{prefix}B"), ("region", f"{prefix}north")} <= rebuilt.entities
    assert (await cache.lookup("feeder", f"{prefix}A", "q"))[0] != stale_key
    await cache.close()
    assert await kept_points(database, prefix) == as_rows(points)
    await check(AggregateStore(database), points)


async def test_a_rebuild_of_part_of_the_data_keeps_the_aggregates_after_it_right(
    database: Database, domain_dsns: dict[str, str], readings_url: str, identity: Identity
) -> None:
    prefix = uuid.uuid4().hex[:6]
    points = await stored_and_aggregated(database, domain_dsns["smartgrid"], prefix, seed=53)
    async with database.connection() as conn:  # the first day's last points lost
        await conn.execute("DELETE FROM meter_register_points WHERE meter_id LIKE %s AND ts >= %s AND ts < %s",
                           [f"{prefix}%", DAY + timedelta(hours=23, minutes=30), DAY + timedelta(days=1)])
    settings = Settings(domain_dsns={"analytics": domain_dsns["analytics"]}, readings_url=readings_url,
                        **admin_client(identity))
    await rebuild(settings, DAY + timedelta(days=1), DAY + timedelta(days=3))  # the next day's first quarters
    with pytest.raises(AssertionError):  # count from the points before the loss: wrong
        await check(AggregateStore(database), points)
    await rebuild(settings, DAY, DAY + timedelta(days=1))  # and are recomputed once those points are back
    await check(AggregateStore(database), points)


def smartgrid_rebuild(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SMARTGRID, "analytics", "rebuild", "--from", START.isoformat(),
                           "--to", (START + timedelta(hours=30)).isoformat()],
                          env={**os.environ, "SMARTGRID_RETRY_ATTEMPTS": "2", **env},
                          capture_output=True, text=True, timeout=120)


async def test_the_command_rebuilds_through_the_api_and_changes_nothing_when_it_is_down(
    database: Database, domain_dsns: dict[str, str], readings_url: str, identity: Identity
) -> None:
    prefix = uuid.uuid4().hex[:6]
    points = await stored_and_aggregated(database, domain_dsns["smartgrid"], prefix, seed=67)
    await damage(database, prefix)
    damaged = await kept_points(database, prefix)
    env = {"SMARTGRID_DSN_ANALYTICS": domain_dsns["analytics"], "SMARTGRID_REDIS_URL": "",
           "SMARTGRID_AUTH_ISSUER": identity.issuer, "SMARTGRID_CLIENT_ID": ADMIN_CLIENT,
           "SMARTGRID_CLIENT_SECRET": identity.secrets[ADMIN_CLIENT]}
    down = await asyncio.to_thread(smartgrid_rebuild, {**env, "SMARTGRID_READINGS_URL":
                                                       f"http://127.0.0.1:{free_port()}/api/v1/readings"})
    assert down.returncode == 1 and "nothing changed" in down.stderr, down.stderr
    assert await kept_points(database, prefix) == damaged
    done = await asyncio.to_thread(smartgrid_rebuild, {**env, "SMARTGRID_READINGS_URL": readings_url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rebuilt {DAY.isoformat()} to {(DAY + timedelta(days=3)).isoformat()} from ")
    assert await kept_points(database, prefix) == as_rows(points)
    await check(AggregateStore(database), points)
