"""The reading store against a real PostgreSQL: idempotent, batched, partitioned by month."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared.readings.rows import meter_row, sensor_row
from shared.readings.store import (
    METER_READINGS,
    SENSOR_READINGS,
    ReadingStore,
    prepare_connection,
)
from shared.stores.postgres import Database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)


@pytest.fixture
async def store(domain_dsns: dict[str, str]) -> AsyncIterator[ReadingStore]:
    database = Database(domain_dsns["smartgrid"], configure=prepare_connection)
    with psycopg.connect(domain_dsns["smartgrid"], autocommit=True) as conn:
        conn.execute("TRUNCATE sensor_readings, meter_readings")
    yield ReadingStore(database)
    await database.close()


def sensor(device: str, minute: int, volts: float = 230.0) -> dict:
    return {"device_id": device, "feeder_id": "F1", "timestamp": T0 + timedelta(minutes=minute),
            "location": {"lat": 52.0, "lon": 5.0}, "voltage_v": {"l1": volts, "l2": None, "l3": None},
            "current_a": None, "rated_current_a": None, "frequency_hz": 50.0, "active_power_kw": 1.0,
            "reactive_power_kvar": None, "power_factor": 0.97, "temperature_c": None}


def meter(meter_id: str, minute: int) -> dict:
    return {"meter_id": meter_id, "site_id": "S1", "feeder_id": None, "region": None,
            "timestamp": T0 + timedelta(minutes=minute),
            "registers": {"1.8.0": 100.0 + minute, "2.8.0": 0.0, "32.7.0": 231.0, "99.99.0": 7.0}}


async def test_writes_are_idempotent_across_month_partitions(store: ReadingStore, domain_dsns) -> None:
    rows = [sensor_row(sensor(f"s{d}", m), f"e{d}-{m}") for d in range(5) for m in range(3)]
    first = await store.write(SENSOR_READINGS, rows)
    again = await store.write(SENSOR_READINGS, rows + rows[:2])
    assert (first.received, first.inserted) == (15, 15)
    assert (again.inserted, again.duplicates) == (0, 17)
    with psycopg.connect(domain_dsns["smartgrid"]) as conn:
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'sensor_readings'::regclass"
        ).fetchone()[0]
        assert conn.execute("SELECT count(*) FROM sensor_readings").fetchone()[0] == 15
    assert partitions >= 2  # January and February 2026


async def test_meter_registers_map_to_columns_and_others_are_kept(store: ReadingStore, domain_dsns) -> None:
    result = await store.write(METER_READINGS, [meter_row(meter("m1", 0), "e1")])
    assert result.inserted == 1
    with psycopg.connect(domain_dsns["smartgrid"]) as conn:
        row = conn.execute("SELECT import_kwh, export_kwh, voltage_l1_v, other_registers FROM meter_readings").fetchone()
    assert row == (100.0, 0.0, 231.0, {"99.99.0": 7.0})


async def test_a_batch_overlapping_stored_rows_keeps_only_the_new_ones(store: ReadingStore, domain_dsns) -> None:
    rows = [sensor_row(sensor("overlap", m), f"o-{m}") for m in range(10)]
    assert (await store.write(SENSOR_READINGS, rows[:4])).inserted == 4
    result = await store.write(SENSOR_READINGS, rows)
    assert (result.inserted, result.duplicates) == (6, 4)
    with psycopg.connect(domain_dsns["smartgrid"]) as conn:
        assert conn.execute("SELECT count(*) FROM sensor_readings WHERE device_id = 'overlap'").fetchone()[0] == 10
