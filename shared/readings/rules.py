"""The first anomaly rules, evaluated on every stored reading; each rule yields at most one
violation per reading (the worst phase).

- voltage outside 230 V +/- 10 % (207-253 V), any phase, sensors and meters: warning;
- frequency outside 49.5-50.5 Hz: critical;
- current above the asset's rated current, any phase: warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NOMINAL_VOLTAGE_V = 230.0
VOLTAGE_BAND = (NOMINAL_VOLTAGE_V * 0.9, NOMINAL_VOLTAGE_V * 1.1)
FREQUENCY_BAND_HZ = (49.5, 50.5)
METER_VOLTAGE_REGISTERS = {"32.7.0": "L1", "52.7.0": "L2", "72.7.0": "L3"}


@dataclass(frozen=True)
class Violation:
    """A reading outside a rule's limit: the data of a `com.smartgrid.alert.raised` event."""

    rule_id: str
    severity: str
    device_id: str
    feeder_id: str | None
    timestamp: datetime
    value: float
    threshold: float
    message: str

    @property
    def alert_id(self) -> str:
        """The deduplication key: one alert per rule and device."""
        return f"{self.rule_id}:{self.device_id}"


def sensor_violations(reading: Mapping[str, Any]) -> Iterator[Violation]:
    """Every rule a sensor reading breaks."""
    device, feeder, ts = reading["device_id"], reading["feeder_id"], reading["timestamp"]
    yield from _voltage(device, feeder, ts, _phases(reading.get("voltage_v")))
    frequency = reading.get("frequency_hz")
    if frequency is not None and not FREQUENCY_BAND_HZ[0] <= frequency <= FREQUENCY_BAND_HZ[1]:
        limit = FREQUENCY_BAND_HZ[0] if frequency < FREQUENCY_BAND_HZ[0] else FREQUENCY_BAND_HZ[1]
        yield Violation("frequency", "critical", device, feeder, ts, frequency, limit,
                        f"frequency {frequency:.3f} Hz outside {FREQUENCY_BAND_HZ[0]}-{FREQUENCY_BAND_HZ[1]} Hz")
    rated = reading.get("rated_current_a")
    over = [(phase, amps) for phase, amps in _phases(reading.get("current_a")) if rated and amps > rated]
    if over:
        phase, amps = max(over, key=lambda pair: pair[1])
        yield Violation("overcurrent", "warning", device, feeder, ts, amps, rated,
                        f"current {amps:.1f} A on {phase} above rated {rated:.1f} A")


def meter_violations(reading: Mapping[str, Any]) -> Iterator[Violation]:
    """Every rule a meter reading breaks."""
    registers = reading["registers"]
    phases = [(phase, registers[code]) for code, phase in METER_VOLTAGE_REGISTERS.items() if code in registers]
    yield from _voltage(reading["meter_id"], reading.get("feeder_id"), reading["timestamp"], phases)


def _voltage(device: str, feeder: str | None, ts: datetime, phases: Iterable[tuple[str, float]]) -> Iterator[Violation]:
    """A violation for the phase farthest outside the band, if any is."""
    low, high = VOLTAGE_BAND
    outside = [(phase, volts) for phase, volts in phases if not low <= volts <= high]
    if outside:
        phase, volts = max(outside, key=lambda pair: abs(pair[1] - NOMINAL_VOLTAGE_V))
        limit = low if volts < low else high
        yield Violation("voltage", "warning", device, feeder, ts, volts, limit,
                        f"voltage {volts:.1f} V on {phase} outside {low:.0f}-{high:.0f} V")


def _phases(values: Mapping[str, float | None] | None) -> list[tuple[str, float]]:
    values = values or {}
    return [(key.upper(), value) for key in ("l1", "l2", "l3") if (value := values.get(key)) is not None]
