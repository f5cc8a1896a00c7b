"""Alerting through the real interfaces: readings into ingest -> broker -> detect -> alerts, seen and
handled through the alert API that `smartgrid up` lists as `alerts`."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from local.servers.smtp import read_mail
from local.servers.webhook import read_webhooks
from tests.integration.functions.test_readings_path import (
    METER,
    SENSOR,
    now,
    post_binary,
    sensor_data,
)

pytestmark = pytest.mark.integration


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


async def post_json(http: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
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


async def test_a_violating_reading_raises_one_alert_that_operators_acknowledge_and_clear(
    platform, http, devices, platform_identity
) -> None:
    alerts = platform["alerts"]
    assert alerts.endswith("/api/v1/alerts")
    device = f"s-{uuid.uuid4().hex[:8]}"
    for offset in (-3, -2, -1):  # three readings of the same excursion: one alert
        reading = sensor_data(device, timestamp=now(offset), frequency_hz=49.0, current_a={"l1": 330.0},
                              rated_current_a=200.0, temperature_c=112.0)
        assert (await post_binary(devices, SENSOR, reading))[0] == 202
    found = await wait_for_alerts(http, alerts, device, 3)
    assert sorted((a["rule_id"], a["severity"]) for a in found) == [
        ("frequency", "critical"), ("hot-spot", "critical"), ("overload", "warning")]
    frequency = next(a for a in found if a["rule_id"] == "frequency")
    one = f"{alerts}/{frequency['alert_id']}"

    alice = platform_identity.headers("operator", subject="alice")
    bob = platform_identity.headers("admin", subject="bob")
    viewer = platform_identity.headers("viewer", subject="vera")
    status, body = await post_json(http, f"{one}/acknowledge", {}, **viewer)
    assert (status, body["error"]) == (403, "insufficient_scope"), "a viewer only reads"
    status, body = await post_json(http, f"{one}/acknowledge", {"by": "mallory"}, **alice)
    assert (status, body["alert_id"], body["status"], body["acknowledged_by"]) == (
        200, frequency["alert_id"], "acknowledged", "alice"), "the actor is the token's subject, never the body's"
    status, body = await post_json(http, f"{one}/acknowledge", {}, **alice)
    assert (status, body["field"]) == (409, "status")
    status, body = await post_json(http, f"{one}/clear", {}, **bob)
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
async def test_bad_filters_get_400_naming_the_parameter(platform, http, devices, params: dict, field: str) -> None:
    status, body = await get_json(http, platform["alerts"], **params)
    assert (status, body["field"]) == (400, field)


async def test_unknown_alerts_and_bad_bodies(platform, http, devices) -> None:
    alerts = platform["alerts"]
    status, body = await get_json(http, f"{alerts}/nope:nothing:1")
    assert (status, body["field"]) == (404, "alert_id")
    status, body = await post_json(http, f"{alerts}/nope:nothing:1/acknowledge", {})
    assert (status, body["field"]) == (404, "alert_id")


def minutes_ago(minutes: float) -> str:
    return now(-60 * minutes)


def readings_breaking_each_rule(tag: str) -> dict[str, tuple[str, list[tuple[str, dict]]]]:
    """Rule -> (device, [(type, data)]): readings, oldest first, that break that rule (and only it stays open)."""
    def sensor(device: str, minutes: float, **values: object) -> tuple[str, dict]:
        return SENSOR, sensor_data(device, timestamp=minutes_ago(minutes), **values)

    def meter(device: str, minutes: float, **registers: float) -> tuple[str, dict]:
        return METER, {"meter_id": device, "site_id": f"site-{device}", "feeder_id": "F-7",
                       "timestamp": minutes_ago(minutes), "registers": {"1.8.0": 500.0 - minutes / 60, **registers}}

    week = 7 * 24 * 60
    cases = {
        "voltage-en50160": [sensor("v", m, voltage_v={"l1": 200.0}) for m in range(12, -1, -1)],
        "frequency": [sensor("f", m, frequency_hz=49.0) for m in (2, 1)],
        "overload": [sensor("o", 1, current_a={"l1": 310.0}, rated_current_a=200.0)],
        "hot-spot": [sensor("h", 1, temperature_c=99.0)],
        "power-factor": [sensor("p", m, power_factor=0.7) for m in (20, 15, 10, 5, 0)],
        "reverse-flow": [meter("r", m, **{"2.8.0": 50.0 - m / 15}) for m in (45, 30, 15, 0)],
        # The second reading teaches a 1-minute interval: 3 missed minutes later the device is missing.
        # (More readings would raise, clear and raise again: the second raise would be suppressed.)
        "missing-data": [sensor("m", m) for m in (40, 39)],
        "flatline": [sensor("l", m, active_power_kw=12.5) for m in range(7 * 60, -1, -30)],
        "consumption-spike": [meter("c", k * week, **{"1.7.0": 1.0 + 0.1 * (k % 2)}) for k in (5, 4, 3, 2, 1)]
        + [meter("c", 0, **{"1.7.0": 6.0})],
    }
    return {rule: (f"{tag}-{readings[0][1].get('device_id') or readings[0][1]['meter_id']}",
                   [(type_, {**data, **({"device_id": f"{tag}-{data['device_id']}"} if "device_id" in data
                                        else {"meter_id": f"{tag}-{data['meter_id']}"})})
                    for type_, data in readings])
            for rule, readings in cases.items()}


async def test_each_rule_raises_exactly_one_alert_and_notifies(platform, domain_dsns, http, devices) -> None:
    cases = readings_breaking_each_rule(uuid.uuid4().hex[:6])
    for _, readings in cases.values():
        for type_, data in readings:
            assert (await post_binary(devices, type_, data))[0] == 202
    # A later reading of another device moves the event-time clock: the silent device is swept.
    assert (await post_binary(devices, SENSOR, sensor_data(f"clock-{uuid.uuid4().hex[:6]}")))[0] == 202
    # Replaying hours of history also raises (and clears) missing data on the way: wait for the end state.
    raised = {}
    for rule, (device, _) in cases.items():
        async def only_rule() -> list[dict]:
            alerts = await alerts_of(http, platform["alerts"], device)
            return alerts if [a["rule_id"] for a in alerts] == [rule] else []

        [raised[rule]] = await wait_for(only_rule, f"{device}'s one open alert: {rule}")
    await asyncio.sleep(1.0)  # nothing more comes: one open alert per device
    for rule, (device, _) in cases.items():
        assert [a["rule_id"] for a in await alerts_of(http, platform["alerts"], device)] == [rule]

    state_dir = Path(platform["state_dir"])
    critical = raised["missing-data"]["alert_id"]
    webhooks = await wait_for(lambda: [w for w in read_webhooks(state_dir) if w["body"].get("alert_id") == critical],
                              f"webhooks of {critical}")
    assert all(w["valid"] for w in webhooks)
    warning = raised["voltage-en50160"]["alert_id"]
    mail = await wait_for(lambda: [m for m in read_mail(state_dir) if m["X-Smartgrid-Alert-Id"] == warning],
                          f"mail about {warning}")
    assert [m["To"] for m in mail] == ["grid-operations@smartgrid.example"]
    attempts = await wait_for(lambda: attempts_of(domain_dsns["smartgrid"], critical), f"attempts of {critical}")
    assert ("operators-webhook", "control-room@smartgrid.example", "sent") in attempts


async def wait_for(find, what: str, timeout_s: float = 20.0):
    """`find()`'s answer (awaited if need be) once it is not empty."""
    for _ in range(int(timeout_s / 0.1)):
        found = find()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {what}, found nothing in {timeout_s:.0f} s")


def attempts_of(dsn: str, alert_id: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT channel, recipient, status FROM notification_attempts WHERE alert_id = %s",
                            (alert_id,)).fetchall()
