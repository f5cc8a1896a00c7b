"""Detection against real servers: rule state in Redis, alerts in PostgreSQL, events to an HTTP broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from shared.alerting.engine import RAISED, Transition
from shared.alerting.operations import AlertClosed
from shared.alerting.store import AlertFilter
from shared.alerting.wiring import Alerting, alerting
from shared.cloudevents import CloudEvent, new_event
from shared.config import Settings
from shared.sink import SinkUnavailable
from tests.integration.eventing.subscriber import Subscriber

pytestmark = pytest.mark.integration
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def sensor_event(device: str, minute: float, **values: Any) -> CloudEvent:
    """A sensor reading event `minute` minutes after START; nominal values unless overridden."""
    data = {"device_id": device, "feeder_id": "F9", "timestamp": (START + timedelta(minutes=minute)).isoformat(),
            "voltage_v": {"l1": 230.0}, "frequency_hz": 50.0, "active_power_kw": 10.0 + minute, **values}
    return new_event("com.smartgrid.sensor.reading", "/test", f"{device}-{minute}", data, partitionkey=device)


@pytest.fixture
def settings_of(redis_url: str, domain_dsns: dict[str, str], broker: Subscriber):
    """Settings of a function instance, with this test's own Redis prefix."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def make(**overrides: Any) -> Settings:
        fields = {"redis_url": redis_url, "redis_prefix": prefix, "domain_dsns": domain_dsns,
                  "sink_url": f"{broker.url}/broker", "retry_initial_delay_s": 0.01, **overrides}
        return Settings(**fields)

    return make


@pytest.fixture
async def instances(settings_of) -> AsyncIterator[Callable[..., Alerting]]:
    """Makes the alerting objects of function instances (replicas); closes them after the test."""
    made: list[Alerting] = []

    def make(**overrides: Any) -> Alerting:
        made.append(alerting(settings_of(**overrides), source=f"/test/detect-{len(made)}"))
        return made[-1]

    yield make
    for instance in made:
        await instance.close()


@pytest.fixture
def parts(instances) -> Alerting:
    """The alerting objects of one function instance."""
    return instances()


def device() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def emitted(broker: Subscriber, device_id: str) -> list[tuple[str, str]]:
    """(type, alert_id) of the alert events the broker received about a device."""
    return [(r.event.type, r.event.json()["alert_id"]) for r in broker.at("broker")
            if r.event.json()["device_id"] == device_id]


async def test_a_breach_raises_one_alert_redelivery_adds_nothing_and_recovery_clears(
    parts: Alerting, broker: Subscriber
) -> None:
    s1 = device()
    breach = sensor_event(s1, 0, frequency_hz=49.6)
    assert (await parts.detector.detect(breach))["transitions"] == 1
    assert await parts.detector.detect(breach) == {"observed": 1, "transitions": 0}
    await parts.detector.detect(sensor_event(s1, 1, frequency_hz=49.6))
    [alert] = await parts.alerts.list(AlertFilter(device_id=s1))
    assert (alert["rule_id"], alert["severity"], alert["status"], alert["feeder_id"]) == (
        "frequency", "warning", "open", "F9")
    await parts.detector.detect(sensor_event(s1, 2, frequency_hz=49.4))
    await parts.detector.detect(sensor_event(s1, 3, frequency_hz=50.0))
    assert emitted(broker, s1) == [
        ("com.smartgrid.alert.raised", alert["alert_id"]),
        ("com.smartgrid.alert.updated", alert["alert_id"]),
        ("com.smartgrid.alert.cleared", alert["alert_id"]),
    ]
    history = await parts.alerts.history(alert["alert_id"])
    assert [(h["change"], h["severity"]) for h in history] == [
        ("raised", "warning"), ("updated", "critical"), ("cleared", "critical")]
    assert (await parts.alerts.get(alert["alert_id"]))["status"] == "cleared"


async def test_missing_data_follows_the_event_time_clock(parts: Alerting, broker: Subscriber) -> None:
    quiet, chatty = device(), device()
    for minute in (0, 15, 30):
        await parts.detector.detect(sensor_event(quiet, minute))
    for minute in range(45, 180, 15):
        await parts.detector.detect(sensor_event(chatty, minute))
    [alert] = await parts.alerts.list(AlertFilter(device_id=quiet))
    assert (alert["rule_id"], alert["severity"]) == ("missing-data", "critical")
    assert await parts.alerts.list(AlertFilter(device_id=chatty)) == []
    await parts.detector.detect(sensor_event(quiet, 200))
    assert (await parts.alerts.get(alert["alert_id"]))["status"] == "cleared"


async def test_operators_acknowledge_and_clear(parts: Alerting, broker: Subscriber) -> None:
    s1 = device()
    await parts.detector.detect(sensor_event(s1, 0, frequency_hz=51.0))
    [alert] = await parts.alerts.list(AlertFilter(device_id=s1))
    acknowledged = await parts.operations.acknowledge(alert["alert_id"], "alice")
    assert (acknowledged["status"], acknowledged["acknowledged_by"]) == ("acknowledged", "alice")
    with pytest.raises(AlertClosed):
        await parts.operations.acknowledge(alert["alert_id"], "bob")
    cleared = await parts.operations.clear(alert["alert_id"], "bob")
    assert (cleared["status"], cleared["cleared_by"]) == ("cleared", "bob")
    # The condition persists: the next reading raises a new occurrence, not the old one again.
    await parts.detector.detect(sensor_event(s1, 1, frequency_hz=51.0))
    alerts = await parts.alerts.list(AlertFilter(status=None, device_id=s1))
    assert [a["status"] for a in alerts] == ["open", "cleared"]
    assert [t for t, _ in emitted(broker, s1)] == [
        "com.smartgrid.alert.raised", "com.smartgrid.alert.acknowledged", "com.smartgrid.alert.cleared",
        "com.smartgrid.alert.raised"]


async def test_transitions_wait_in_the_outbox_while_the_broker_is_down(parts: Alerting, broker: Subscriber) -> None:
    s1 = device()
    broker.answers["broker"] = lambda received: web.Response(status=503)
    with pytest.raises(SinkUnavailable):
        await parts.detector.detect(sensor_event(s1, 0, frequency_hz=49.0))
    assert len(await parts.states.outbox()) == 1
    del broker.answers["broker"]
    await parts.detector.detect(sensor_event(s1, 1, frequency_hz=49.0))
    assert await parts.states.outbox() == []
    assert [t for t, _ in emitted(broker, s1) if t.endswith(RAISED)] == ["com.smartgrid.alert.raised"] * 5
    assert len({r.event.id for r in broker.at("broker") if r.event.json()["device_id"] == s1}) == 1
    assert len(await parts.alerts.list(AlertFilter(device_id=s1))) == 1


async def test_replicas_share_the_state_and_raise_once(instances, broker: Subscriber) -> None:
    replicas = [instances() for _ in range(3)]
    s1 = device()
    events = [sensor_event(s1, minute / 10, frequency_hz=49.0) for minute in range(30)]
    await asyncio.gather(*(replicas[n % 3].detector.detect(event) for n, event in enumerate(events)))
    assert len(await replicas[0].alerts.list(AlertFilter(device_id=s1))) == 1
    assert [t for t, _ in emitted(broker, s1)] == ["com.smartgrid.alert.raised"]


async def test_a_late_reading_clears_missing_data_after_its_raise(parts: Alerting, broker: Subscriber) -> None:
    late, ahead = device(), device()
    await parts.detector.detect(sensor_event(late, 0))
    await parts.detector.detect(sensor_event(ahead, 120))  # the sensors' clock runs ahead: `late` is swept
    [alert] = await parts.alerts.list(AlertFilter(device_id=late))
    await parts.detector.detect(sensor_event(late, 15))  # its reading arrives after all
    history = await parts.alerts.history(alert["alert_id"])
    assert [h["change"] for h in history] == ["raised", "cleared"] and history[1]["at"] >= history[0]["at"]
    assert await parts.states.outbox() == []


async def test_an_open_alert_the_rule_state_lost_is_superseded(instances, broker: Subscriber) -> None:
    s1 = device()
    before = instances()
    await before.detector.detect(sensor_event(s1, 0, frequency_hz=49.0))
    after = instances(redis_prefix=f"restarted-{uuid.uuid4().hex[:6]}:")
    await after.detector.detect(sensor_event(s1, 1, frequency_hz=49.0))
    alerts = await after.alerts.list(AlertFilter(status=None, device_id=s1))
    assert [(a["status"], a["cleared_by"]) for a in alerts] == [("open", None), ("cleared", "detect")]
    assert alerts[1]["message"] == f"superseded by {alerts[0]['alert_id']}"


async def test_a_change_the_database_refuses_is_set_aside_and_blocks_nothing(parts: Alerting, broker: Subscriber) -> None:
    s1 = device()
    refused = Transition(RAISED, f"bogus:{s1}:1", "bogus", "loud", s1, None, None, 1.0, 1.0, "not a severity")
    await parts.states.enqueue([refused])
    await parts.detector.detect(sensor_event(s1, 0, frequency_hz=49.0))
    assert await parts.states.outbox() == []
    assert [a["rule_id"] for a in await parts.alerts.list(AlertFilter(device_id=s1))] == ["frequency"]
    assert [t for t, _ in emitted(broker, s1)] == ["com.smartgrid.alert.raised"]
