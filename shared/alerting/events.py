"""Alert transitions as `com.smartgrid.alert.<change>` CloudEvents (schemas in schemas/events/)."""

from __future__ import annotations

from typing import Any

from shared.alerting.engine import Transition
from shared.cloudevents import CloudEvent, new_event

ALERT_TYPE_PREFIX = "com.smartgrid.alert."


def alert_event(transition: Transition, source: str) -> CloudEvent:
    """The event of one transition; its id is the transition's, stable across retries."""
    return new_event(ALERT_TYPE_PREFIX + transition.change, source, transition.event_id, alert_data(transition),
                     partitionkey=transition.device_id)


def alert_data(transition: Transition) -> dict[str, Any]:
    """The event data: times in epoch milliseconds, as the Avro schema's timestamp-millis."""
    return {
        "alert_id": transition.alert_id, "dedup_key": transition.dedup_key, "rule_id": transition.rule_id,
        "severity": transition.severity, "device_id": transition.device_id, "feeder_id": transition.feeder_id,
        "region": transition.region, "timestamp": round(transition.at * 1000),
        "raised_at": round(transition.raised_at * 1000), "value": transition.value,
        "threshold": transition.threshold, "message": transition.message, "actor": transition.actor,
    }
