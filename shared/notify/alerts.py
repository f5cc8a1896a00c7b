"""Alert events as the notifier reads them: `com.smartgrid.alert.<kind>`, checked against the catalogue."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from shared.cloudevents import CloudEvent, InvalidEvent
from shared.validation.catalogue import Catalogue

ALERT_TYPE_PREFIX = "com.smartgrid.alert."
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "emergency": 3}


@dataclass(frozen=True)
class AlertEvent:
    """One change of one alert occurrence: raised, updated, acknowledged or cleared."""

    kind: str
    alert_id: str
    dedup_key: str
    rule_id: str
    severity: str
    device_id: str
    feeder_id: str | None
    region: str | None
    timestamp: datetime
    message: str
    value: float | None = None
    threshold: float | None = None
    raised_at: datetime | None = None
    actor: str | None = None

    @classmethod
    def from_cloudevent(cls, catalogue: Catalogue, event: CloudEvent) -> AlertEvent:
        """The alert event of `event`; raises InvalidEvent, InvalidData or UnknownEventType when it is none."""
        if not event.type.startswith(ALERT_TYPE_PREFIX):
            raise InvalidEvent("type", f"expected a {ALERT_TYPE_PREFIX}* event, found {event.type!r}")
        data = catalogue.validate(event.type, event.json())
        return cls(
            kind=event.type.removeprefix(ALERT_TYPE_PREFIX),
            alert_id=data["alert_id"],
            dedup_key=data.get("dedup_key") or f"{data['rule_id']}:{data['device_id']}",
            rule_id=data["rule_id"],
            severity=data["severity"],
            device_id=data["device_id"],
            feeder_id=data.get("feeder_id"),
            region=data.get("region"),
            timestamp=data["timestamp"],
            message=data["message"],
            value=data.get("value"),
            threshold=data.get("threshold"),
            raised_at=data.get("raised_at"),
            actor=data.get("actor"),
        )

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data: times as RFC 3339 text."""
        return {name: value.isoformat() if isinstance(value, datetime) else value
                for name, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertEvent:
        """The inverse of `to_json`."""
        times = {name: datetime.fromisoformat(data[name]).astimezone(UTC) if data.get(name) else None
                 for name in ("timestamp", "raised_at")}
        return cls(**{**data, **times})
