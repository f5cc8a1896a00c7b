"""The rebuild path on the whole platform: readings in through ingest, out through the readings API (its
`smartgrid up` endpoint), into `smartgrid analytics rebuild` run against the running platform."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from local.state import PlatformState
from tests.integration.functions.test_analytics_path import reading
from tests.integration.functions.test_readings_path import BATCH, post_binary
from tests.integration.platform import SMARTGRID

pytestmark = pytest.mark.integration


async def test_a_rebuild_restores_lost_points_from_the_readings_the_platform_stored(platform, http, devices) -> None:
    state = PlatformState.load(Path(platform["state_dir"]))
    assert state.endpoints["readings"].endswith("/api/v1/readings")
    meter, feeder = f"m-{uuid.uuid4().hex[:8]}", f"F-{uuid.uuid4().hex[:6]}"
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    batch = {"gateway_id": "gw-rebuild", "readings": [reading(meter, feeder, hour + timedelta(minutes=m), kwh)
                                                      for m, kwh in ((0, 100.0), (20, 101.5), (35, 103.0))]}
    assert (await post_binary(devices, BATCH, batch))[0] == 202
    window = {"from": hour.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()}

    async def energy() -> float | None:
        async with http.get(f"{platform['analytics']}/meters/{meter}", params=window) as response:
            rows = await response.json()
        return rows[0]["energy_kwh"] if rows and rows[0]["readings"] == 3 else None

    async def stored() -> list[dict]:
        async with http.get(f"{state.endpoints['readings']}/meters/{meter}", params=window) as response:
            assert response.status == 200
            return (await response.json())["readings"]

    for _ in range(600):  # cold starts and the broker's deliveries: up to a minute
        if await energy() is not None and len(await stored()) == 3:
            break
        await asyncio.sleep(0.1)
    assert await energy() == pytest.approx(3.0)
    with psycopg.connect(state.dsns["analytics"], autocommit=True) as conn:
        conn.execute("DELETE FROM meter_register_points WHERE meter_id = %s AND ts > %s", [meter, hour])
        conn.execute("UPDATE aggregates SET energy_kwh = 0 WHERE entity_id = %s", [meter])
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("SMARTGRID_DSN_") and name not in ("SMARTGRID_READINGS_URL", "SMARTGRID_REDIS_URL")}
    done = await asyncio.to_thread(
        subprocess.run, [SMARTGRID, "analytics", "rebuild", "--from", hour.isoformat(),
                         "--to", (hour + timedelta(hours=1)).isoformat()],
        env={**env, "SMARTGRID_STATE_DIR": platform["state_dir"]}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(state.dsns["analytics"]) as conn:
        points = conn.execute("SELECT count(*) FROM meter_register_points WHERE meter_id = %s", [meter]).fetchone()
        hours = conn.execute("SELECT energy_kwh FROM aggregates WHERE level = 'meter' AND entity_id = %s "
                             "AND bucket = 'hour'", [meter]).fetchall()
    assert points == (3,) and hours == [(pytest.approx(3.0),)]
