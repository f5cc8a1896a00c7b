"""What a run sent and what the platform answered, counted as the senders go, with the alerts
the accepted readings should raise (the platform's rule engine run over them in memory) and how many
of them an earlier run stored already (so they are not stored again)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.demo.expected_alerts import ExpectedAlerts


@dataclass
class Tally:
    """Counts of one run, updated by the senders; `stored` holds the (device, time) of readings stored before."""

    expected_alerts: ExpectedAlerts
    stored: frozenset[tuple[str, datetime]] = frozenset()
    http_requests: int = 0
    http_events: int = 0
    http_accepted: int = 0
    http_rejected: Counter[str] = field(default_factory=Counter)
    http_failed: Counter[str] = field(default_factory=Counter)
    malformed_sent: Counter[str] = field(default_factory=Counter)  # bad requests by kind: malformed or forbidden
    malformed_accepted: int = 0
    refused_otherwise: Counter[str] = field(default_factory=Counter)  # bad input refused with another status
    sensor_readings_accepted: int = 0
    sensor_readings_stored_before: int = 0
    kafka_batches: Counter[str] = field(default_factory=Counter)
    kafka_failed: int = 0
    meter_readings_produced: int = 0
    meter_readings_stored_before: int = 0
    malformed_records: Counter[str] = field(default_factory=Counter)
    http_latency_s: list[float] = field(default_factory=list)
    kafka_latency_s: list[float] = field(default_factory=list)

    def sensor_accepted(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Count sensor readings the platform accepted, and the alerts they should raise."""
        accepted = list(readings)
        self.sensor_readings_accepted += len(accepted)
        self.sensor_readings_stored_before += self._stored_before(accepted, "device_id")
        self.expected_alerts.sensor_readings(accepted)

    def meters_produced(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Count meter readings Kafka acknowledged, and the alerts they should raise."""
        produced = list(readings)
        self.meter_readings_produced += len(produced)
        self.meter_readings_stored_before += self._stored_before(produced, "meter_id")
        self.expected_alerts.meter_readings(produced)

    def _stored_before(self, readings: Sequence[Mapping[str, Any]], device_field: str) -> int:
        """How many of the readings an earlier run stored already."""
        if not self.stored:
            return 0
        return sum((reading[device_field], datetime.fromisoformat(reading["timestamp"])) in self.stored
                   for reading in readings)

    @property
    def readings_accepted(self) -> int:
        """Sensor readings `ingest` accepted plus meter readings Kafka acknowledged."""
        return self.sensor_readings_accepted + self.meter_readings_produced


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]
