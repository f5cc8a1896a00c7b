"""Alerting through the real interfaces: readings into ingest -> broker -> detect -> alerts, seen and
handled through the alert API that `smartgrid up` lists as `alerts`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from tests.integration.functions.test_readings_path import SENSOR, now, post_binary, sensor_data

pytestmark = pytest.mark.integration


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


async def post_json(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


async def alerts_of(http: aiohttp.ClientSession, url: str, device: str, status: str = "open") -> list[dict]:
    status_code, alerts = await get_json(http, url, device=device, status=status)
    assert status_code == 200
    return alerts


async def wait_for_alerts(http, url: str, device: str, count: int, timeout_s: float = 20.0) -> list[dict]:
    """The device's open alerts once there are `count` of them."""
    found: list[dict] = []
    for _ in range(int(timeout_s / 0.1)):
        found = await alerts_of(http, url, device)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} open alerts of {device}, found {found}")


async def test_a_violating_reading_raises_one_alert_that_operators_acknowledge_and_clear(platform, http) -> None:
    alerts = platform["alerts"]
    assert alerts.endswith("/api/v1/alerts")
    device = f"s-{uuid.uuid4().hex[:8]}"
    for offset in (-3, -2, -1):  # three readings of the same excursion: one alert
        reading = sensor_data(device, timestamp=now(offset), frequency_hz=49.0, current_a={"l1": 330.0},
                              rated_current_a=200.0, temperature_c=112.0)
        assert (await post_binary(http, platform["ingest"], SENSOR, reading))[0] == 202
    found = await wait_for_alerts(http, alerts, device, 3)
    assert sorted((a["rule_id"], a["severity"]) for a in found) == [
        ("frequency", "critical"), ("hot-spot", "critical"), ("overload", "warning")]
    frequency = next(a for a in found if a["rule_id"] == "frequency")
    one = f"{alerts}/{frequency['alert_id']}"

    status, body = await post_json(http, f"{one}/acknowledge", {"by": "alice"})
    assert (status, body["alert_id"], body["status"], body["acknowledged_by"]) == (
        200, frequency["alert_id"], "acknowledged", "alice")
    status, body = await post_json(http, f"{one}/acknowledge", {"by": "alice"})
    assert (status, body["field"]) == (409, "status")
    status, body = await post_json(http, f"{one}/clear", {"by": "bob"})
    assert (status, body["status"], body["cleared_by"]) == (200, "cleared", "bob")
    status, history = await get_json(http, f"{one}/history")
    assert status == 200 and [h["change"] for h in history] == ["raised", "acknowledged", "cleared"]
    assert [a["rule_id"] for a in await alerts_of(http, alerts, device, "cleared")] == ["frequency"]


@pytest.mark.parametrize(("params", "field"), [
    ({"severity": "loud"}, "severity"),
    ({"status": "gone"}, "status"),
    ({"since": "yesterday"}, "since"),
    ({"limit": "0"}, "limit"),
])
async def test_bad_filters_get_400_naming_the_parameter(platform, http, params: dict, field: str) -> None:
    status, body = await get_json(http, platform["alerts"], **params)
    assert (status, body["field"]) == (400, field)


async def test_unknown_alerts_and_bad_bodies(platform, http) -> None:
    alerts = platform["alerts"]
    status, body = await get_json(http, f"{alerts}/nope:nothing:1")
    assert (status, body["field"]) == (404, "alert_id")
    status, body = await post_json(http, f"{alerts}/nope:nothing:1/acknowledge", {})
    assert (status, body["field"]) == (400, "by")
