"""The readings path through the real HTTP interfaces: ingest -> broker -> process -> PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from shared.cloudevents import new_event, to_http_binary, to_structured
from tests.integration.platform import Devices, wait_until

pytestmark = pytest.mark.integration

SENSOR = "com.smartgrid.sensor.reading"
METER = "com.smartgrid.meter.reading"
BATCH = "com.smartgrid.meter.readings.batch"


def now(offset_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def sensor_data(device: str, **overrides: object) -> dict:
    return {"device_id": device, "feeder_id": "F-1", "timestamp": now(), "voltage_v": {"l1": 231.0},
            "frequency_hz": 50.0, **overrides}


def meter_data(meter: str, minutes_ago: int = 0, **registers: float) -> dict:
    return {"meter_id": meter, "site_id": f"site-{meter}", "timestamp": now(-60 * minutes_ago),
            "registers": {"1.8.0": 100.0 + minutes_ago, **registers}}


def count(dsn: str, table: str, column: str, value: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (value,)).fetchone()[0]


async def post_binary(devices: Devices, type_: str, data: dict, id: str | None = None) -> tuple[int, dict]:
    """POST one binary-mode event to ingest as the device it names."""
    headers, body = to_http_binary(new_event(type_, "/tests/devices", id or uuid.uuid4().hex, data))
    return await devices.post(body, headers)


async def test_binary_mode_reading_is_stored(platform, domain_dsns, http, devices) -> None:
    device = f"s-{uuid.uuid4().hex[:8]}"
    assert await post_binary(devices, SENSOR, sensor_data(device)) == (202, {"accepted": 1})
    await wait_until(lambda: count(domain_dsns["smartgrid"], "sensor_readings", "device_id", device) == 1)


async def test_structured_mode_reading_is_stored(platform, domain_dsns, http, devices) -> None:
    meter = f"m-{uuid.uuid4().hex[:8]}"
    document = to_structured(new_event(METER, "/tests/meters", uuid.uuid4().hex, meter_data(meter)))
    status, body = await devices.post(json.dumps(document).encode(),
                              {"content-type": "application/cloudevents+json"})
    assert (status, body) == (202, {"accepted": 1})
    await wait_until(lambda: count(domain_dsns["smartgrid"], "meter_readings", "meter_id", meter) == 1)


async def test_batch_mode_reports_each_rejected_event_and_forwards_the_rest(platform, domain_dsns, http, devices) -> None:
    good = [f"m-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    await devices.register({"device_id": gateway, "kind": "gateway"},
                           *({"device_id": m, "kind": "meter", "gateway_id": gateway} for m in [*good, "x"]))
    events = [to_structured(new_event(METER, "/tests", uuid.uuid4().hex, meter_data(m))) for m in good]
    events.insert(1, to_structured(new_event(METER, "/tests", "bad-1", {**meter_data("x"), "registers": {}})))
    events.append({"specversion": "1.0", "id": "bad-2", "source": "/tests"})
    status, body = await devices.post(json.dumps(events).encode(), {"content-type": "application/cloudevents-batch+json"},
                                      sender=devices.identity.device(gateway, "gateway"))
    assert status == 400
    assert body["accepted"] == 3
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "data.registers.1.8.0"), (4, "type")]
    assert body["rejected"][0]["event"] == "bad-1"
    for meter in good:
        await wait_until(lambda meter=meter: count(domain_dsns["smartgrid"], "meter_readings", "meter_id", meter) == 1)
    assert count(domain_dsns["smartgrid"], "meter_readings", "meter_id", "x") == 0


BAD_INPUT = [
    pytest.param({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": ',
                 "body", id="invalid-json"),
    pytest.param(dict(to_http_binary(new_event("com.example.unknown", "/t", "u1", {"device_id": "BAD"}))[0]),
                 b'{"device_id": "BAD"}', "type", id="unknown-type"),
    pytest.param(dict(to_http_binary(new_event(SENSOR, "/t", "u2", {}))[0]),
                 json.dumps({"device_id": "BAD", "timestamp": now()}).encode(), "data.feeder_id", id="missing-field"),
    pytest.param(dict(to_http_binary(new_event(SENSOR, "/t", "u3", {}))[0]),
                 json.dumps(sensor_data("BAD", frequency_hz="fifty")).encode(), "data.frequency_hz", id="wrong-type"),
    pytest.param(dict(to_http_binary(new_event(SENSOR, "/t", "u4", {}))[0]),
                 json.dumps(sensor_data("BAD", timestamp="2031-01-01T00:00:00Z")).encode(), "data.timestamp",
                 id="timestamp-in-the-future"),
    pytest.param(dict(to_http_binary(new_event(SENSOR, "/t", "u5", {}))[0]),
                 json.dumps(sensor_data("BAD", timestamp="1999-12-31T23:59:59Z")).encode(), "data.timestamp",
                 id="timestamp-too-old"),
    pytest.param(dict(to_http_binary(new_event(SENSOR, "/t", "u6", {}))[0]),
                 json.dumps({**sensor_data("BAD"), "pad": "x" * 1_100_000}).encode(), "body", id="oversized"),
]


@pytest.mark.parametrize(("headers", "body", "field"), BAD_INPUT)
async def test_bad_input_gets_400_naming_the_field_and_stores_nothing(
    platform, domain_dsns, http, devices, headers: dict[str, str], body: bytes, field: str
) -> None:
    status, answer = await devices.post(body, headers)
    assert status == 400, answer
    rejected = answer["rejected"][0] if "rejected" in answer else answer
    assert rejected["field"] == field
    assert rejected["message"]
    assert count(domain_dsns["smartgrid"], "sensor_readings", "device_id", "BAD") == 0


async def test_a_reading_sent_twice_is_stored_once(platform, domain_dsns, http, devices) -> None:
    device = f"s-{uuid.uuid4().hex[:8]}"
    data = sensor_data(device)
    for event_id in ("first", "first", "resent-with-another-id"):
        assert (await post_binary(devices, SENSOR, data, id=event_id))[0] == 202
    await wait_until(lambda: count(domain_dsns["smartgrid"], "sensor_readings", "device_id", device) == 1)
    headers, body = to_http_binary(new_event(SENSOR, "/tests", "first", data, partitionkey=device))
    async with http.post(platform["broker"], data=body, headers=headers) as response:  # a broker redelivery
        assert response.status == 202
    await wait_until(lambda: "delivered" in Path(platform["state_dir"], "up.log").read_text())
    assert count(domain_dsns["smartgrid"], "sensor_readings", "device_id", device) == 1


def _process_pid(state_dir: str) -> int | None:
    """The pid of this platform's `process` function server (functions-framework's master: a child of
    `smartgrid up`, whose pid file is in `state_dir`, and the leader of its process group)."""
    up_pid = Path(state_dir, "up.pid").read_text().strip()
    found = subprocess.run(["pgrep", "-P", up_pid, "-f", "functions/process/main.py"], capture_output=True, text=True)
    return int(found.stdout.split()[0]) if found.stdout.split() else None


async def test_process_killed_mid_stream_stores_every_reading_exactly_once(platform, domain_dsns, http, devices) -> None:
    site = f"site-kill-{uuid.uuid4().hex[:6]}"
    meters = [f"k-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    sent = 0
    for index, meter in enumerate(meters):
        readings = [{**meter_data(meter, minutes_ago=m), "site_id": site} for m in range(50)]
        status, _ = await post_binary(devices, BATCH, {"gateway_id": "gw-kill", "readings": readings})
        assert status == 202
        sent += len(readings)
        if index == 10:
            pid = await wait_until(lambda: _process_pid(platform["state_dir"]))
            os.killpg(pid, signal.SIGKILL)  # the server and its worker, as when a pod's container is killed
            killed = pid

    def stored() -> int:
        with psycopg.connect(domain_dsns["smartgrid"]) as conn:
            return conn.execute("SELECT count(*) FROM meter_readings WHERE site_id = %s", (site,)).fetchone()[0]

    await wait_until(lambda: stored() == sent, timeout=60)
    with psycopg.connect(domain_dsns["smartgrid"]) as conn:
        distinct = conn.execute(
            "SELECT count(DISTINCT (meter_id, ts)) FROM meter_readings WHERE site_id = %s", (site,)
        ).fetchone()[0]
    assert distinct == stored() == sent
    assert _process_pid(platform["state_dir"]) not in (None, killed)  # it was restarted by the activator


async def test_permanent_error_is_dead_lettered_and_replayed_once_fixed(platform, domain_dsns, pg_admin_dsn, http, devices) -> None:
    meter = f"d-{uuid.uuid4().hex[:8]}"
    admin_on_data = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=psycopg.conninfo.conninfo_to_dict(
        domain_dsns["smartgrid"])["dbname"])
    constraint = f"ck_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_on_data, autocommit=True) as conn:  # an operator's constraint the reading breaks
        conn.execute(f"ALTER TABLE meter_readings ADD CONSTRAINT {constraint} CHECK (import_kwh < 1000000) NOT VALID")
    try:
        status, _ = await post_binary(devices, METER, meter_data(meter, **{"1.8.0": 5_000_000.0}))
        assert status == 202
        letters = await wait_until(lambda: constraint in _dlq(platform, "list") and _dlq(platform, "list"))
        assert constraint in letters and "422" in letters
    finally:
        with psycopg.connect(admin_on_data, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE meter_readings DROP CONSTRAINT {constraint}")
    assert count(domain_dsns["smartgrid"], "meter_readings", "meter_id", meter) == 0
    [letter_id] = [line.split()[0] for line in letters.splitlines() if constraint in line]
    assert f"replayed 1 dead letter(s): {letter_id}" in _dlq(platform, "replay", "--id", letter_id)
    await wait_until(lambda: count(domain_dsns["smartgrid"], "meter_readings", "meter_id", meter) == 1)
    assert "replayed 0 dead letter" in _dlq(platform, "replay", "--id", letter_id)


def _dlq(platform: dict[str, str], *args: str) -> str:
    """Run `smartgrid dlq ARGS` against the session's platform; return what it printed."""
    env = {**os.environ, "SMARTGRID_STATE_DIR": platform["state_dir"]}
    result = subprocess.run([str(Path(sys.executable).with_name("smartgrid")), "dlq", *args],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout
