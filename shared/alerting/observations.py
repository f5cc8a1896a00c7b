"""Readings as the rule engine sees them: a device, a time and its metrics, per phase where it has phases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PHASES = ("l1", "l2", "l3")
METER_PHASE_REGISTERS = {
    "voltage": ("32.7.0", "52.7.0", "72.7.0"),
    "current": ("31.7.0", "51.7.0", "71.7.0"),
}
IMPORT_POWER, EXPORT_POWER, EXPORT_ENERGY = "1.7.0", "2.7.0", "2.8.0"

# metric -> channel ("l1", "l2", "l3", or "" for a single value) -> value
Metrics = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of one device: `kind` is sensor or meter, `at` epoch seconds."""

    device_id: str
    kind: str
    at: float
    feeder_id: str | None
    region: str | None
    metrics: Metrics
    export_kwh: float | None = None

    def channels(self, metric: str) -> dict[str, float]:
        """The values of `metric` by channel; empty when the reading lacks it."""
        return self.metrics.get(metric, {})


def from_sensor(reading: Mapping[str, Any]) -> Observation:
    """The observation of a sensor reading (a catalogue datum)."""
    metrics: Metrics = {}
    voltages, currents = _phases(reading.get("voltage_v")), _phases(reading.get("current_a"))
    if voltages:
        metrics["voltage"] = voltages
    if currents:
        metrics["current"] = currents
        rated = reading.get("rated_current_a")
        if rated:
            metrics["loading"] = {"": max(currents.values()) / rated}
    for metric, key in (("frequency", "frequency_hz"), ("temperature", "temperature_c"),
                        ("active_power", "active_power_kw")):
        if reading.get(key) is not None:
            metrics[metric] = {"": float(reading[key])}
    if reading.get("power_factor") is not None:
        metrics["power_factor"] = {"": abs(float(reading["power_factor"]))}
    return Observation(reading["device_id"], "sensor", reading["timestamp"].timestamp(),
                       reading.get("feeder_id"), None, metrics)


def from_meter(reading: Mapping[str, Any]) -> Observation:
    """The observation of a meter reading (a catalogue datum): OBIS registers as metrics."""
    registers: Mapping[str, float] = reading["registers"]
    metrics: Metrics = {}
    for metric, codes in METER_PHASE_REGISTERS.items():
        channels = {phase: registers[code] for phase, code in zip(PHASES, codes) if code in registers}
        if channels:
            metrics[metric] = channels
    if IMPORT_POWER in registers:
        metrics["active_power"] = {"": registers[IMPORT_POWER] - registers.get(EXPORT_POWER, 0.0)}
    return Observation(reading["meter_id"], "meter", reading["timestamp"].timestamp(), reading.get("feeder_id"),
                       reading.get("region"), metrics, registers.get(EXPORT_ENERGY))


def _phases(values: Mapping[str, float | None] | None) -> dict[str, float]:
    values = values or {}
    return {phase: float(value) for phase in PHASES if (value := values.get(phase)) is not None}
