"""Injected anomalies: a handful of readings, chosen from the seed, that break the platform's rules.

Voltage sags below 207 V and swells above 253 V on sensors, a frequency excursion outside
49.5-50.5 Hz on one feeder, currents above rated, and meter voltages out of band.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from local.demo.fleet import Fleet
from shared.readings.rules import METER_VOLTAGE_REGISTERS as METER_VOLTAGE_CODES

SAG = "voltage-sag"
SWELL = "voltage-swell"
FREQUENCY = "frequency"
OVERCURRENT = "overcurrent"
METER_VOLTAGE = "meter-voltage"
METER_VOLTAGE_REGISTERS: Mapping[str, str] = MappingProxyType(
    {phase.lower(): code for code, phase in METER_VOLTAGE_CODES.items()}
)


@dataclass(frozen=True)
class Anomaly:
    """One device's readings from interval `first` for `length` intervals get `value` (on `phase`)."""

    kind: str
    device_id: str
    first: int
    length: int
    value: float
    phase: str = "l1"

    def covers(self, index: int) -> bool:
        """True when interval `index` is one of the anomaly's."""
        return self.first <= index < self.first + self.length


def plan_anomalies(fleet: Fleet, intervals: int, seed: int) -> tuple[Anomaly, ...]:
    """The anomalies of a run: two sags, two swells, one feeder's frequency excursion, two overcurrents,
    three meter voltages out of band."""
    rng = random.Random(f"{seed}/anomalies")
    sensors = [sensor.device_id for sensor in fleet.sensors]
    planned: list[Anomaly] = []

    def place(kind: str, devices: Iterable[str], longest: int, value: float, phase: str = "l1") -> None:
        length = rng.randint(1, min(longest, intervals))
        first = rng.randrange(intervals - length + 1)
        planned.extend(Anomaly(kind, device, first, length, value, phase) for device in devices)

    for device in _some(rng, sensors, 2):
        place(SAG, [device], 3, round(rng.uniform(195.0, 205.0), 1), rng.choice(("l1", "l2", "l3")))
    for device in _some(rng, sensors, 2):
        place(SWELL, [device], 2, round(rng.uniform(254.0, 262.0), 1), rng.choice(("l1", "l2", "l3")))
    feeder = rng.randrange(len(fleet.feeders))
    excursion = round(rng.choice((rng.uniform(49.30, 49.45), rng.uniform(50.55, 50.70))), 3)
    place(FREQUENCY, [s.device_id for s in fleet.sensors if s.feeder == feeder], 1, excursion)
    for sensor in _some(rng, list(fleet.sensors), 2):
        place(OVERCURRENT, [sensor.device_id], 2, round(sensor.rated_current_a * rng.uniform(1.08, 1.25), 1),
              rng.choice(("l1", "l2", "l3")))
    for device in _some(rng, [meter.meter_id for meter in fleet.meters], 3):
        place(METER_VOLTAGE, [device], 2, round(rng.choice((rng.uniform(198.0, 205.0), rng.uniform(255.0, 262.0))), 1),
              rng.choice(("l1", "l2", "l3")))
    return tuple(planned)


def by_interval(anomalies: Iterable[Anomaly], intervals: int) -> dict[int, dict[str, list[Anomaly]]]:
    """Interval -> device -> the anomalies of that device in that interval."""
    table: dict[int, dict[str, list[Anomaly]]] = defaultdict(lambda: defaultdict(list))
    for anomaly in anomalies:
        for index in range(anomaly.first, min(anomaly.first + anomaly.length, intervals)):
            table[index][anomaly.device_id].append(anomaly)
    return {index: dict(devices) for index, devices in table.items()}


def apply_to_sensor(reading: Mapping[str, Any], anomalies: Iterable[Anomaly]) -> dict[str, Any]:
    """A copy of a sensor reading with the anomalies' values in place."""
    changed = {**reading, "voltage_v": dict(reading["voltage_v"]), "current_a": dict(reading["current_a"])}
    for anomaly in anomalies:
        if anomaly.kind in (SAG, SWELL):
            changed["voltage_v"][anomaly.phase] = anomaly.value
        elif anomaly.kind == FREQUENCY:
            changed["frequency_hz"] = anomaly.value
        elif anomaly.kind == OVERCURRENT:
            changed["current_a"][anomaly.phase] = anomaly.value
    return changed


def apply_to_meter(reading: Mapping[str, Any], anomalies: Iterable[Anomaly]) -> dict[str, Any]:
    """A copy of a meter reading with the anomalies' voltages in place."""
    changed = {**reading, "registers": dict(reading["registers"])}
    for anomaly in anomalies:
        if anomaly.kind == METER_VOLTAGE:
            changed["registers"][METER_VOLTAGE_REGISTERS[anomaly.phase]] = anomaly.value
    return changed


def _some(rng: random.Random, items: list[Any], count: int) -> list[Any]:
    return rng.sample(items, min(count, len(items)))
