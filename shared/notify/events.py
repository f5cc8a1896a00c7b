"""`com.smartgrid.notification.sent` and `.failed`: the broker hears of every delivery and every failed channel."""

from __future__ import annotations

from typing import Any

from shared.cloudevents import CloudEvent, new_event
from shared.notify.attempts import Attempt

NOTIFICATION_TYPE_PREFIX = "com.smartgrid.notification."
EMITTED_STATUSES = ("sent", "failed")


def attempt_event(attempt: Attempt, source: str) -> CloudEvent:
    """The event of a sent or failed attempt; its id is stable across retries of the same attempt."""
    notification = attempt.notification
    notification_id = notification.notification_id(attempt.channel, attempt.recipient)
    epoch_ms = round(attempt.attempted_at.timestamp() * 1000)
    alert = notification.alerts[0]
    data: dict[str, Any] = {
        "notification_id": notification_id,
        "alert_id": notification.key,
        "kind": notification.kind,
        "channel": attempt.channel,
        "channel_kind": attempt.channel_kind,
        "recipient": attempt.recipient,
        "severity": notification.severity,
        "rule_id": alert.rule_id if len(notification.alerts) == 1 else None,
        "device_id": alert.device_id if len(notification.alerts) == 1 else None,
        "alert_count": len(notification.alerts),
        "attempted_at": epoch_ms,
    }
    if attempt.status == "failed":
        data["error"] = attempt.error or ""
    event_id = notification_id if attempt.status == "sent" else f"{notification_id}:{epoch_ms}"
    return new_event(NOTIFICATION_TYPE_PREFIX + attempt.status, source, event_id, data,
                     partitionkey=notification.key)
