"""Meter readings as register points: what the aggregates are computed from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VOLTAGE_REGISTERS = ("32.7.0", "52.7.0", "72.7.0")
FREQUENCY_REGISTER = "14.7.0"


@dataclass(frozen=True)
class Point:
    """One meter reading's import register, power, voltage and grid frequency at its time."""

    meter_id: str
    ts: datetime
    feeder_id: str | None
    region: str | None
    import_kwh: float
    power_kw: float | None
    voltage_v: float | None
    frequency_hz: float | None = None


def point(reading: Mapping[str, Any]) -> Point:
    """The point of one validated meter reading (catalogue datum)."""
    registers = reading["registers"]
    voltages = [registers[code] for code in VOLTAGE_REGISTERS if registers.get(code) is not None]
    return Point(
        reading["meter_id"], reading["timestamp"], reading.get("feeder_id"), reading.get("region"),
        registers["1.8.0"], registers.get("1.7.0"), sum(voltages) / len(voltages) if voltages else None,
        registers.get(FREQUENCY_REGISTER),
    )


def distinct_points(readings: Iterable[Mapping[str, Any]]) -> list[Point]:
    """The points of readings, one per meter and time (the first one sent wins, as in storage)."""
    points: dict[tuple[str, datetime], Point] = {}
    for reading in readings:
        item = point(reading)
        points.setdefault((item.meter_id, item.ts), item)
    return list(points.values())
