"""The analytics path through the real HTTP interfaces: ingest -> broker -> analytics -> its query API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.cloudevents import new_event, to_http_binary
from tests.integration.functions.test_readings_path import BATCH, METER, post_binary

pytestmark = pytest.mark.integration


def reading(meter: str, feeder: str, at: datetime, kwh: float) -> dict:
    return {"meter_id": meter, "site_id": "s", "feeder_id": feeder, "region": f"r-{feeder}",
            "timestamp": at.isoformat(), "registers": {"1.8.0": kwh, "1.7.0": 2.0, "32.7.0": 230.0}}


async def test_readings_posted_to_ingest_are_aggregated_and_served(platform, http, devices) -> None:
    assert platform["analytics"].endswith("/api/v1/analytics")
    meter, feeder = f"m-{uuid.uuid4().hex[:8]}", f"F-{uuid.uuid4().hex[:6]}"
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    await devices.register({"device_id": gateway, "kind": "gateway"},
                           {"device_id": meter, "kind": "meter", "gateway_id": gateway})
    headers, body = to_http_binary(new_event(METER, "/tests", uuid.uuid4().hex, reading(meter, feeder, hour, 100.0)))
    assert (await devices.post(body, headers, sender=devices.identity.device(gateway, "gateway")))[0] == 202
    batch = {"gateway_id": gateway, "readings": [reading(meter, feeder, hour + timedelta(minutes=m), kwh)
                                                        for m, kwh in ((20, 101.5), (35, 103.0), (35, 103.0))]}
    assert (await post_binary(devices, BATCH, batch))[0] == 202
    query = {"from": (hour - timedelta(hours=1)).isoformat(), "to": (hour + timedelta(hours=2)).isoformat(),
             "bucket": "hour"}

    async def hours(level: str, entity: str) -> list[dict]:
        async with http.get(f"{platform['analytics']}/{level}/{entity}", params=query) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "max-age=300"
            body = await response.json()
            return body if body and body[0]["readings"] == 3 else []

    for _ in range(600):  # the function's cold start and the broker's delivery: up to a minute
        rows = await hours("meters", meter)
        if rows:
            break
        await asyncio.sleep(0.1)
    assert rows[0]["energy_kwh"] == pytest.approx(3.0)
    assert rows[0]["power_mean_kw"] == 2.0 and rows[0]["voltage_mean_v"] == 230.0
    assert (await hours("feeders", feeder))[0]["energy_kwh"] == pytest.approx(3.0)
    assert (await hours("regions", f"r-{feeder}"))[0]["energy_kwh"] == pytest.approx(3.0)


@pytest.mark.parametrize(("query", "field"), [("bucket=week", "bucket"), ("from=yesterday", "from"),
                                               ("to=2026-11-22T10:00:00", "to"),
                                               ("from=2026-11-22T10:00:00Z&to=2026-11-21T10:00:00Z", "from"),
                                               ("bucket=15min&from=2000-01-01T00:00:00Z", "from")])
async def test_bad_parameters_are_answered_400_naming_them(platform, http, devices, query: str, field: str) -> None:
    async with http.get(f"{platform['analytics']}/meters/m-1?{query}") as response:
        assert response.status == 400
        assert (await response.json())["field"] == field


async def test_unknown_paths_are_answered_404(platform, http, devices) -> None:
    async with http.get(f"{platform['analytics']}/sites/s-1") as response:
        assert response.status == 404
        assert (await response.json())["field"] == "path"
