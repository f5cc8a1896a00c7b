"""Alert events, channels files and a clock for the notifier's unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.notify.alerts import AlertEvent

RAISED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def alert(kind: str = "raised", **fields: Any) -> AlertEvent:
    """An alert event of rule `voltage-high` on device `S-1`, feeder F-12 in region north, with `fields` changed."""
    values: dict[str, Any] = {
        "kind": kind, "alert_id": "voltage-high:S-1:1795341600000", "dedup_key": "voltage-high:S-1",
        "rule_id": "voltage-high", "severity": "critical", "device_id": "S-1", "feeder_id": "F-12",
        "region": "north", "timestamp": RAISED_AT, "message": "voltage above 253 V", "value": 262.5,
        "threshold": 253.0, "raised_at": RAISED_AT, "actor": None,
    }
    return AlertEvent(**{**values, **fields})


@dataclass
class FakeClock:
    """Epoch seconds that move only when told to."""

    now: float = RAISED_AT.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
