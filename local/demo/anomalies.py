"""Injected anomalies, chosen from the seed, each long enough for the alert rule it should raise.

Sensors: voltage sags (one below 195.5 V) and a swell that move the 10-minute mean out of 207-253 V,
a frequency excursion on one feeder, overloads above 1.5 x rated current, a hot transformer, a power
factor below 0.80 for longer than 15 minutes, active power stuck at one value for over 6 hours, and
a sensor that falls silent. Meters: voltages out of band, a meter with no registered generation
whose export register rises (reverse flow), and a meter that falls silent. Each anomaly ends early
enough for its alert to clear within the period.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from local.demo.fleet import PHASES, Fleet
from shared.alerting.observations import (
    EXPORT_ENERGY,
    EXPORT_POWER,
    METER_PHASE_REGISTERS,
)

DEEP_SAG = "deep-voltage-sag"
SAG = "voltage-sag"
SWELL = "voltage-swell"
METER_VOLTAGE = "meter-voltage"
FREQUENCY = "frequency"
OVERLOAD = "overload"
HOT_SPOT = "hot-spot"
POWER_FACTOR = "power-factor"
FLATLINE = "flatline"
REVERSE_FLOW = "reverse-flow"
SILENCE = "silence"
SENSOR_KINDS = (DEEP_SAG, SAG, SWELL, OVERLOAD, OVERLOAD, HOT_SPOT, POWER_FACTOR, FLATLINE, SILENCE)
METER_KINDS = (METER_VOLTAGE, METER_VOLTAGE, METER_VOLTAGE, SILENCE)
METER_VOLTAGE_REGISTERS: Mapping[str, str] = MappingProxyType(
    dict(zip(PHASES, METER_PHASE_REGISTERS["voltage"], strict=True))
)


@dataclass(frozen=True)
class Kind:
    """How anomalies of one kind are planned: the rule they raise, how long they last (minutes), the
    ranges their value is drawn from, whether it hits one phase, the minutes of readings the rule must
    see (`needs`: a window, hold or duration) and the fewest readings (`least`), the normal readings
    it needs before (`lead`), and after it, to clear: at least `tail`, spanning `settles` minutes."""

    rule: str
    minutes: tuple[int, int]
    values: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    phased: bool = False
    needs: int = 0
    least: int = 1
    lead: int = 1
    tail: int = 1
    settles: int = 0


KINDS: Mapping[str, Kind] = MappingProxyType({
    DEEP_SAG: Kind("voltage-en50160", (20, 60), ((186.0, 194.0),), phased=True, needs=10, settles=10),
    SAG: Kind("voltage-en50160", (20, 60), ((198.0, 205.0),), phased=True, needs=10, settles=10),
    SWELL: Kind("voltage-en50160", (20, 45), ((255.0, 262.0),), phased=True, needs=10, settles=10),
    METER_VOLTAGE: Kind("voltage-en50160", (20, 45), ((196.0, 205.0), (255.0, 262.0)), phased=True, needs=10,
                        settles=10),
    FREQUENCY: Kind("frequency", (15, 30), ((49.30, 49.78), (50.22, 50.70))),
    OVERLOAD: Kind("overload", (15, 45), ((1.55, 2.1),), phased=True),  # times the rated current
    HOT_SPOT: Kind("hot-spot", (30, 90), ((99.0, 116.0),)),
    POWER_FACTOR: Kind("power-factor", (45, 90), ((0.62, 0.78),), needs=15),
    FLATLINE: Kind("flatline", (420, 480), ((20.0, 150.0),), needs=360),
    # export kW; the alert clears after 4 readings without export
    REVERSE_FLOW: Kind("reverse-flow", (60, 180), ((0.4, 3.0),), least=2, tail=5),
    # 3 expected intervals of silence, the interval learnt from 2 readings
    # (beyond the lateness the run allows for its time compression: local/demo/rules.py)
    SILENCE: Kind("missing-data", (240, 360), least=4, lead=2),
})


@dataclass(frozen=True)
class Anomaly:
    """One device's readings from interval `first` for `length` intervals get `value` (on `phase`)."""

    kind: str
    device_id: str
    first: int
    length: int
    value: float = 0.0
    phase: str = "l1"

    def covers(self, index: int) -> bool:
        """True when interval `index` is one of the anomaly's."""
        return self.first <= index < self.first + self.length

    @property
    def rule(self) -> str:
        """The id of the alert rule the anomaly should raise."""
        return KINDS[self.kind].rule


def plan_anomalies(fleet: Fleet, intervals: int, interval_minutes: int, seed: int) -> tuple[Anomaly, ...]:
    """The anomalies of a run: a frequency excursion on one feeder, then SENSOR_KINDS on other sensors,
    a reverse flow on a meter without PV and METER_KINDS on other meters, one device each (as far as
    the fleet has devices; an anomaly that does not fit the period is left out)."""
    rng = random.Random(f"{seed}/anomalies")
    planned: list[Anomaly] = []

    def place(kind: str, devices: list[str], scale: float = 1.0) -> None:
        spec = KINDS[kind]
        span = _span(rng, spec, intervals, interval_minutes)
        value = rng.uniform(*rng.choice(spec.values)) * scale
        phase = rng.choice(PHASES) if spec.phased else "l1"
        if span is not None:
            planned.extend(Anomaly(kind, device, *span, round(value, 3), phase) for device in devices)

    feeder = rng.randrange(len(fleet.feeders))
    place(FREQUENCY, [sensor.device_id for sensor in fleet.sensors if sensor.feeder == feeder])
    others = [sensor for sensor in fleet.sensors if sensor.feeder != feeder]
    for kind, sensor in zip(SENSOR_KINDS, rng.sample(others, len(others))):
        place(kind, [sensor.device_id], sensor.rated_current_a if kind == OVERLOAD else 1.0)
    without_pv = [meter.meter_id for meter in fleet.meters if not meter.pv_kwp]
    if without_pv:
        place(REVERSE_FLOW, [rng.choice(without_pv)])
    taken = {anomaly.device_id for anomaly in planned}
    meters = [meter.meter_id for meter in fleet.meters if meter.meter_id not in taken]
    for kind, meter in zip(METER_KINDS, rng.sample(meters, len(meters))):
        place(kind, [meter])
    return tuple(planned)


def by_interval(anomalies: Iterable[Anomaly], intervals: int) -> dict[int, dict[str, list[Anomaly]]]:
    """Interval -> device -> the anomalies of that device in that interval (a reverse flow's export
    register stays until the period's end)."""
    table: dict[int, dict[str, list[Anomaly]]] = defaultdict(lambda: defaultdict(list))
    for anomaly in anomalies:
        last = intervals if anomaly.kind == REVERSE_FLOW else min(anomaly.first + anomaly.length, intervals)
        for index in range(anomaly.first, last):
            table[index][anomaly.device_id].append(anomaly)
    return {index: dict(devices) for index, devices in table.items()}


def apply_to_sensor(reading: Mapping[str, Any], anomalies: Iterable[Anomaly]) -> dict[str, Any] | None:
    """A copy of a sensor reading with the anomalies' values in place; None when the sensor is silent."""
    changed = {**reading, "voltage_v": dict(reading["voltage_v"]), "current_a": dict(reading["current_a"])}
    for anomaly in anomalies:
        if anomaly.kind == SILENCE:
            return None
        if anomaly.kind in (DEEP_SAG, SAG, SWELL):
            changed["voltage_v"][anomaly.phase] = anomaly.value
        elif anomaly.kind == FREQUENCY:
            changed["frequency_hz"] = anomaly.value
        elif anomaly.kind == OVERLOAD:
            changed["current_a"][anomaly.phase] = anomaly.value
        elif anomaly.kind == HOT_SPOT:
            changed["temperature_c"] = anomaly.value
        elif anomaly.kind == POWER_FACTOR:
            changed.update(_with_power_factor(reading, anomaly.value))
        elif anomaly.kind == FLATLINE:
            changed["active_power_kw"] = anomaly.value
    return changed


def apply_to_meter(
    reading: Mapping[str, Any], anomalies: Iterable[Anomaly], index: int, interval_h: float
) -> dict[str, Any] | None:
    """A copy of interval `index`'s meter reading with the anomalies in place; None when the meter is silent."""
    changed = {**reading, "registers": dict(reading["registers"])}
    for anomaly in anomalies:
        if anomaly.kind == SILENCE:
            return None
        if anomaly.kind == METER_VOLTAGE:
            changed["registers"][METER_VOLTAGE_REGISTERS[anomaly.phase]] = anomaly.value
        elif anomaly.kind == REVERSE_FLOW:
            exported = anomaly.value * interval_h * min(index - anomaly.first, anomaly.length)
            changed["registers"][EXPORT_ENERGY] = round(exported, 3)
            changed["registers"][EXPORT_POWER] = anomaly.value if anomaly.covers(index) else 0.0
    return changed


def _span(rng: random.Random, kind: Kind, intervals: int, interval_minutes: int) -> tuple[int, int] | None:
    """(first, length) of an anomaly of `kind`: its drawn duration, at least what its rule needs, with the
    normal readings it needs before and after inside the period; None when it does not fit."""
    needed = max(kind.least, _readings(kind.needs, interval_minutes))
    tail = max(kind.tail, _readings(kind.settles, interval_minutes))
    room = intervals - kind.lead - tail
    length = min(room, max(needed, math.ceil(rng.uniform(*kind.minutes) / interval_minutes)))
    if length < needed:
        return None
    return rng.randint(kind.lead, kind.lead + room - length), length


def _readings(minutes: int, interval_minutes: int) -> int:
    """Readings that span `minutes` (one for none)."""
    return math.ceil(minutes / interval_minutes) + 1 if minutes else 1


def _with_power_factor(reading: Mapping[str, Any], power_factor: float) -> dict[str, float]:
    """Power factor, active and reactive power of the same apparent power at `power_factor`."""
    apparent_kva = math.hypot(reading["active_power_kw"], reading["reactive_power_kvar"])
    return {
        "power_factor": power_factor,
        "active_power_kw": round(apparent_kva * power_factor, 2),
        "reactive_power_kvar": round(apparent_kva * math.sin(math.acos(power_factor)), 2),
    }
