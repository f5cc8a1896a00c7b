"""Fixtures of the forecast tests: synthetic feeder and region loads in the analytics database, and the
forecast function running under functions-framework."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from local.functions import Function
from local.servers.process import free_port
from tests.identity import Endpoint, Identity
from tests.integration.eventing.subscriber import Subscriber
from tests.unit.synthetic_load import synthetic_load

SOURCE = Path(__file__).resolve().parents[3] / "functions" / "forecast" / "main.py"
REGION = "fc-north"
WEEKS = 5
SHORT_DAYS = 10


@dataclass(frozen=True)
class Seeded:
    """What the analytics database holds for the tests: entities with enough history, one without."""

    trainable: list[tuple[str, str]]
    short: tuple[str, str]
    end: datetime  # today's midnight (UTC): every load is before it


def aggregate_rows(level: str, entity_id: str, load: pd.Series) -> list[tuple]:
    """The 15-minute and daily aggregate rows of a load in kW (a quarter's energy = kW / 4)."""
    energy = load / 4
    return [
        (level, entity_id, bucket, ts.tz_localize(UTC), kwh, 1, kwh * 4, 1, 230.0, 1, kwh * 4, ts.tz_localize(UTC))
        for bucket, series in (("15min", energy), ("day", energy.resample("D").sum()))
        for ts, kwh in series.items()
    ]


def weather_rows(start: datetime, end: datetime) -> list[tuple]:
    """Hourly observations of one station of REGION: a daily temperature cycle and midday sun."""
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    return [("fc-station", REGION, ts.to_pydatetime(), 8 + 5 * ((ts.hour - 3) % 24 / 24), max(0, 600 - 60 * abs(ts.hour - 12)))
            for ts in hours]


@pytest.fixture(scope="module")
def seeded(domain_dsns: dict[str, str]) -> Seeded:
    """Five weeks of feeders fc-f1 (of REGION, which has weather) and fc-f2 and of region REGION, and
    ten days of feeder fc-short, all ending at today's midnight."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(weeks=WEEKS)
    first_day = f"{start:%Y-%m-%d}"
    loads = {("feeder", "fc-f1"): synthetic_load(first_day, WEEKS, seed=1),
             ("feeder", "fc-f2"): synthetic_load(first_day, WEEKS, seed=2) * 3,
             ("region", REGION): synthetic_load(first_day, WEEKS, seed=3) * 10}
    short = synthetic_load(first_day, WEEKS, seed=4)
    loads[("feeder", "fc-short")] = short[short.index >= (end - timedelta(days=SHORT_DAYS)).replace(tzinfo=None)]
    rows = [row for (level, entity_id), load in loads.items() for row in aggregate_rows(level, entity_id, load)]
    with psycopg.connect(domain_dsns["analytics"]) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO aggregates (level, entity_id, bucket, bucket_start, energy_kwh, readings, power_sum_kw,"
            " power_count, voltage_sum_v, voltage_count, peak_demand_kw, peak_at) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        # A meter of fc-f1 tells its region, whose weather station observed the whole time.
        cursor.execute(
            "INSERT INTO aggregates (level, entity_id, bucket, bucket_start, feeder_id, region, energy_kwh, readings,"
            " power_sum_kw, power_count, voltage_sum_v, voltage_count, peak_demand_kw, peak_at) VALUES"
            " ('meter', 'fc-m1', '15min', %s, 'fc-f1', %s, 1, 1, 4, 1, 230, 1, 4, %s)", (start, REGION, start))
        cursor.executemany(
            "INSERT INTO weather_observations (station_id, region, ts, temperature_c, ghi_w_m2)"
            " VALUES (%s, %s, %s, %s, %s)", weather_rows(start, end))
    trainable = [("feeder", "fc-f1"), ("feeder", "fc-f2"), ("region", REGION)]
    return Seeded(trainable, ("feeder", "fc-short"), end)


@pytest.fixture
async def forecast(broker: Subscriber, domain_dsns: dict[str, str], seeded: Seeded, identity: Identity,
                   tmp_path: Path) -> AsyncIterator[Endpoint]:
    """The forecast function (few boosting iterations) running under functions-framework, called by an admin
    (who may run its jobs and read its API)."""
    env = {"SMARTGRID_DSN_ANALYTICS": domain_dsns["analytics"], "SMARTGRID_FORECAST_MAX_ITER": "60",
           "SMARTGRID_RETRY_INITIAL_DELAY": "0.01", "SMARTGRID_RETRY_MAX_DELAY": "0.05",
           "SMARTGRID_BREAKER_FAILURES": "100", **identity.env}
    port = free_port()
    process = Function("forecast", SOURCE).process(port, f"{broker.url}/broker", env, tmp_path / "forecast.log")
    await asyncio.to_thread(process.start, port)
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", identity.headers("admin", subject="alice"))
    finally:
        await asyncio.to_thread(process.stop)
