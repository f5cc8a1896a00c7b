"""What a run sent and what the platform answered, counted as the senders go, with the alerts
the accepted readings should raise (the platform's own rules applied to them)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.readings.rules import meter_violations, sensor_violations

AlertKey = tuple[str, str, str]  # rule, device, timestamp: what the alert event's id is made of


@dataclass
class Tally:
    """Counts of one run, updated by the senders."""

    http_requests: int = 0
    http_events: int = 0
    http_accepted: int = 0
    http_rejected: Counter[str] = field(default_factory=Counter)
    http_failed: Counter[str] = field(default_factory=Counter)
    malformed_sent: Counter[str] = field(default_factory=Counter)
    malformed_accepted: int = 0
    sensor_readings_accepted: int = 0
    kafka_batches: Counter[str] = field(default_factory=Counter)
    kafka_failed: int = 0
    meter_readings_produced: int = 0
    malformed_records: Counter[str] = field(default_factory=Counter)
    expected_alerts: set[AlertKey] = field(default_factory=set)
    http_latency_s: list[float] = field(default_factory=list)
    kafka_latency_s: list[float] = field(default_factory=list)

    def sensor_accepted(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Count sensor readings the platform accepted, and the alerts they should raise."""
        for reading in readings:
            self.sensor_readings_accepted += 1
            self.expected_alerts.update(_keys(sensor_violations(reading)))

    def meters_produced(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Count meter readings Kafka acknowledged, and the alerts they should raise."""
        for reading in readings:
            self.meter_readings_produced += 1
            self.expected_alerts.update(_keys(meter_violations(reading)))

    @property
    def readings_accepted(self) -> int:
        """Sensor readings `ingest` accepted plus meter readings Kafka acknowledged."""
        return self.sensor_readings_accepted + self.meter_readings_produced

    def expected_alerts_by_rule(self) -> Counter[str]:
        """Distinct alerts the accepted readings should raise, by rule."""
        return Counter(rule for rule, _, _ in self.expected_alerts)


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _keys(violations: Iterable[Any]) -> Iterable[AlertKey]:
    return ((v.rule_id, v.device_id, v.timestamp) for v in violations)
