"""The rule engine, rule by rule: raise, update, clear, hysteresis, dedup and late readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerting.conditions import Context
from shared.alerting.engine import (
    CLEARED,
    RAISED,
    UPDATED,
    DeviceState,
    RuleEngine,
    Transition,
)
from shared.alerting.observations import from_meter, from_sensor
from shared.alerting.rules import RuleSet

RULES = RuleSet.load(Path(__file__).resolve().parents[3] / "knative" / "config" / "alert-rules.yaml")
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def sensor(minute: float, **values: Any) -> dict[str, Any]:
    """A sensor reading `minute` minutes after START with nominal values, overridden by `values`."""
    reading = {
        "device_id": "s1", "feeder_id": "F1", "timestamp": START + timedelta(minutes=minute),
        "voltage_v": {"l1": 230.0, "l2": 231.0, "l3": 229.0}, "current_a": {"l1": 100.0, "l2": 90.0, "l3": 95.0},
        "rated_current_a": 200.0, "frequency_hz": 50.0, "power_factor": 0.95, "temperature_c": 60.0,
        "active_power_kw": 50.0 + minute % 7,
    }
    reading.update(values)
    return reading


def meter(minute: float, **registers: float) -> dict[str, Any]:
    """A meter reading `minute` minutes after START."""
    return {"meter_id": "m1", "site_id": "site", "feeder_id": "F2", "region": "north",
            "timestamp": START + timedelta(minutes=minute), "registers": {"1.8.0": 100.0 + minute, **registers}}


def run(readings: list[dict[str, Any]], rule: str, context: Context = Context()) -> list[tuple[str, str]]:
    """(change, severity) of the rule's transitions over the readings, fed in order to one device."""
    engine, state = RuleEngine(RULES), DeviceState("s1")
    changes: list[Transition] = []
    for reading in readings:
        observation = from_sensor(reading) if "device_id" in reading else from_meter(reading)
        changes += engine.observe(state, observation, context)
    return [(t.change, t.severity) for t in changes if t.rule_id == rule]


def volts(minutes_and_values: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [sensor(minute, voltage_v={"l1": value, "l2": 230.0, "l3": 230.0}) for minute, value in minutes_and_values]


@pytest.mark.parametrize(("readings", "expected"), [
    # one low sample inside a 10-minute window of good ones: the mean stays in band
    (volts([(0, 230), (1, 230), (2, 230), (3, 180), (4, 230)]), []),
    # sustained sag: warning once the mean passes 207 V, critical under 195.5 V, then recovery
    (volts([(m, 200) for m in range(12)]), [(RAISED, "warning")]),
    (volts([(m, 190) for m in range(3)] + [(m, 240) for m in range(3, 30)]),
     [(RAISED, "critical"), (UPDATED, "warning"), (CLEARED, "warning")]),
    # swell over 253 V, cleared only once the mean is back at or under 250.7 V
    (volts([(0, 255), (11, 252), (22, 251), (33, 250)]), [(RAISED, "warning"), (CLEARED, "warning")]),
])
def test_voltage_10_minute_mean(readings: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert run(readings, "voltage-en50160") == expected


def test_voltage_does_not_flap_around_the_limit() -> None:
    wobble = volts([(m * 11, 252.5 if m % 2 else 253.5) for m in range(10)])
    assert run(wobble, "voltage-en50160") == [(RAISED, "warning")]


@pytest.mark.parametrize(("hz", "expected"), [
    ([50.0, 49.9, 50.1], []),
    ([49.7, 49.82, 49.86], [(RAISED, "warning"), (CLEARED, "warning")]),
    ([50.6, 50.3, 50.18], [(RAISED, "critical"), (UPDATED, "warning")]),
    ([46.0, 49.0, 50.0], [(RAISED, "emergency"), (UPDATED, "critical"), (CLEARED, "critical")]),
])
def test_frequency_tiers(hz: list[float], expected: list[tuple[str, str]]) -> None:
    assert run([sensor(index, frequency_hz=value) for index, value in enumerate(hz)], "frequency") == expected


@pytest.mark.parametrize(("amps", "expected"), [
    ([250.0, 290.0], []),
    ([310.0, 295.0, 289.0], [(RAISED, "warning"), (CLEARED, "warning")]),
    ([370.0, 410.0, 385.0, 330.0], [(RAISED, "critical"), (UPDATED, "emergency"), (UPDATED, "critical"),
                                     (UPDATED, "warning")]),
])
def test_overload_tiers_of_rated_current(amps: list[float], expected: list[tuple[str, str]]) -> None:
    readings = [sensor(index, current_a={"l1": 10.0, "l2": value, "l3": 10.0}) for index, value in enumerate(amps)]
    assert run(readings, "overload") == expected


def test_hot_spot_temperature() -> None:
    temperatures = [90, 99, 97, 111, 108, 104, 94]
    readings = [sensor(index, temperature_c=value) for index, value in enumerate(temperatures)]
    assert run(readings, "hot-spot") == [(RAISED, "warning"), (UPDATED, "critical"), (UPDATED, "warning"),
                                          (CLEARED, "warning")]


def test_power_factor_must_stay_low_for_15_minutes() -> None:
    short = [sensor(minute, power_factor=0.7) for minute in range(0, 14, 5)] + [sensor(15, power_factor=0.9)]
    assert run(short, "power-factor") == []
    sustained = [sensor(minute, power_factor=-0.7) for minute in range(0, 20, 5)] + [sensor(25, power_factor=0.83),
                                                                                      sensor(30, power_factor=0.86)]
    assert run(sustained, "power-factor") == [(RAISED, "warning"), (CLEARED, "warning")]


def test_reverse_flow_only_without_registered_generation() -> None:
    exporting = [meter(minute * 15, **{"2.8.0": 10.0 + minute}) for minute in range(3)]
    idle = [meter(minute * 15, **{"2.8.0": 12.0}) for minute in range(3, 8)]
    assert run(exporting + idle, "reverse-flow") == [(RAISED, "warning"), (CLEARED, "warning")]
    assert run(exporting, "reverse-flow", Context(generation=frozenset({"m1"}))) == []


def test_flatline_after_six_hours() -> None:
    flat = [sensor(minute, active_power_kw=42.0) for minute in range(0, 6 * 60 + 1, 30)]
    assert run(flat, "flatline") == [(RAISED, "warning")]
    assert run(flat + [sensor(400, active_power_kw=43.0)], "flatline") == [(RAISED, "warning"), (CLEARED, "warning")]
    assert run(flat[:-1], "flatline") == []


def test_consumption_spike_against_the_same_hour_of_the_week() -> None:
    week = 7 * 24 * 60
    history = [meter(n * week + 60 * 8, **{"1.7.0": 1.0 + 0.1 * (n % 3)}) for n in range(5)]
    assert run(history, "consumption-spike") == []
    spike = meter(5 * week + 60 * 8, **{"1.7.0": 6.0})
    calm = meter(6 * week + 60 * 8, **{"1.7.0": 1.1})
    assert run(history + [spike, calm], "consumption-spike") == [(RAISED, "warning"), (CLEARED, "warning")]


def test_missing_data_is_raised_by_a_sweep_and_cleared_by_a_reading() -> None:
    engine, state = RuleEngine(RULES), DeviceState("m1")
    for minute in (0, 15, 30):
        engine.observe(state, from_meter(meter(minute)), Context())
    last = state.last_at
    lateness = 5 * 60
    assert last is not None and engine.deadline(state) == pytest.approx(last + 3 * 15 * 60 + lateness)
    assert engine.sweep(state, last + 49 * 60) == []
    raised = engine.sweep(state, last + 51 * 60)
    assert [(t.rule_id, t.change, t.severity) for t in raised] == [("missing-data", RAISED, "critical")]
    assert engine.sweep(state, last + 90 * 60) == [] and engine.deadline(state) is None
    back = engine.observe(state, from_meter(meter(200)), Context())
    assert [(t.rule_id, t.change) for t in back] == [("missing-data", CLEARED)]


def test_one_open_alert_per_rule_and_device_and_redelivery_changes_nothing() -> None:
    engine, state = RuleEngine(RULES), DeviceState("s1")
    first = engine.observe(state, from_sensor(sensor(0, frequency_hz=49.0)), Context())
    assert [(t.rule_id, t.change) for t in first] == [("frequency", RAISED)]
    assert first[0].alert_id == "frequency:s1:" + str(round(first[0].at * 1000)) and first[0].dedup_key == "frequency:s1"
    assert engine.observe(state, from_sensor(sensor(0, frequency_hz=49.0)), Context()) == []  # redelivered
    assert engine.observe(state, from_sensor(sensor(1, frequency_hz=49.0)), Context()) == []  # still open
    assert [t.change for t in engine.observe(state, from_sensor(sensor(2)), Context())] == [CLEARED]
    again = engine.observe(state, from_sensor(sensor(3, frequency_hz=49.0)), Context())
    assert [t.change for t in again] == [RAISED] and again[0].alert_id != first[0].alert_id


def test_state_and_transitions_survive_json() -> None:
    engine, state = RuleEngine(RULES), DeviceState("s1")
    transitions = engine.observe(state, from_sensor(sensor(0, frequency_hz=49.0)), Context())
    assert DeviceState.from_json(state.to_json()) == state
    assert Transition.from_json(transitions[0].to_json()) == transitions[0]


def test_operator_clear_closes_the_alert() -> None:
    engine, state = RuleEngine(RULES), DeviceState("s1")
    raised = engine.observe(state, from_sensor(sensor(0, frequency_hz=49.0)), Context())[0]
    cleared = engine.close(state, raised.alert_id, raised.at + 60, "alice")
    assert cleared is not None and (cleared.change, cleared.actor, cleared.raised_at) == (CLEARED, "alice", raised.at)
    assert state.open == {} and engine.close(state, raised.alert_id, raised.at + 61, "alice") is None
