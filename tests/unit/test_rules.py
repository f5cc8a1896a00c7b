"""The first anomaly rules: limits, one violation per rule and reading (the worst phase)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.readings.rules import meter_violations, sensor_violations

TS = datetime(2026, 11, 21, 12, tzinfo=UTC)


def sensor(**fields: object) -> dict:
    return {"device_id": "s1", "feeder_id": "F1", "timestamp": TS, **fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"voltage_v": {"l1": 230.0, "l2": 207.0, "l3": 253.0}}, []),
        ({"voltage_v": {"l1": 206.9}}, [("voltage", 206.9, 207.0)]),
        ({"voltage_v": {"l1": 253.1}}, [("voltage", 253.1, 253.0)]),
        ({"voltage_v": {"l1": 255.0, "l2": 190.0, "l3": 230.0}}, [("voltage", 190.0, 207.0)]),
        ({"frequency_hz": 50.5}, []),
        ({"frequency_hz": 49.49}, [("frequency", 49.49, 49.5)]),
        ({"frequency_hz": 50.51}, [("frequency", 50.51, 50.5)]),
        ({"current_a": {"l1": 30.0}, "rated_current_a": None}, []),
        ({"current_a": {"l1": 20.0}, "rated_current_a": 20.0}, []),
        ({"current_a": {"l1": 21.0, "l2": 25.0}, "rated_current_a": 20.0}, [("overcurrent", 25.0, 20.0)]),
    ],
)
def test_sensor_rules(fields: dict, expected: list[tuple[str, float, float]]) -> None:
    found = [(v.rule_id, v.value, round(v.threshold, 6)) for v in sensor_violations(sensor(**fields))]
    assert found == expected


def test_severities_and_alert_id() -> None:
    violations = {v.rule_id: v for v in sensor_violations(
        sensor(voltage_v={"l1": 300.0}, frequency_hz=48.0, current_a={"l1": 9.0}, rated_current_a=5.0))}
    assert {rule: v.severity for rule, v in violations.items()} == {
        "voltage": "warning", "frequency": "critical", "overcurrent": "warning"}
    assert violations["voltage"].alert_id == "voltage:s1"


@pytest.mark.parametrize(
    ("registers", "expected"),
    [
        ({"1.8.0": 1.0}, []),
        ({"1.8.0": 1.0, "32.7.0": 231.0, "52.7.0": 229.0, "72.7.0": 230.0}, []),
        ({"1.8.0": 1.0, "32.7.0": 231.0, "52.7.0": 205.0, "72.7.0": 260.0}, [("voltage", 260.0, 253.0)]),
    ],
)
def test_meter_rules(registers: dict, expected: list[tuple[str, float, float]]) -> None:
    reading = {"meter_id": "m1", "site_id": "x", "timestamp": TS, "registers": registers}
    assert [(v.rule_id, v.value, round(v.threshold, 6)) for v in meter_violations(reading)] == expected
