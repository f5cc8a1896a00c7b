"""Notifications: what is told (one alert event, an escalation, or a digest of several), as text and as JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.notify.alerts import SEVERITY_RANK, AlertEvent


@dataclass(frozen=True)
class Notification:
    """One notification, the same for every channel and recipient.

    `key` is the alert occurrence (or the digest's id), `kind` what happened (raised, updated,
    acknowledged, cleared, escalated, digest), `occurrence` tells apart updates of one alert (the
    update's time in epoch ms; empty for the other kinds, which happen once per alert).
    """

    key: str
    kind: str
    occurrence: str
    alerts: tuple[AlertEvent, ...]
    subject: str
    text: str

    @property
    def identity(self) -> str:
        """What a redelivery of the same notification has in common with the first delivery."""
        return f"{self.key}|{self.kind}|{self.occurrence}"

    @property
    def severity(self) -> str:
        """The highest severity among the alerts."""
        return max((alert.severity for alert in self.alerts), key=SEVERITY_RANK.__getitem__)

    def notification_id(self, channel: str, recipient: str) -> str:
        """A stable id of this notification through one channel to one recipient."""
        return hashlib.sha256(f"{self.identity}|{channel}|{recipient}".encode()).hexdigest()[:32]

    def payload(self, channel: str, recipient: str) -> dict[str, Any]:
        """The JSON a webhook receives."""
        return {
            "notification_id": self.notification_id(channel, recipient),
            "kind": self.kind,
            "alert_id": self.key,
            "severity": self.severity,
            "recipient": recipient,
            "subject": self.subject,
            "text": self.text,
            "alerts": [alert.to_json() for alert in self.alerts],
        }


def _occurrence(alert: AlertEvent) -> str:
    """An alert is raised, acknowledged and cleared once, but may be updated many times: by the update's time."""
    return str(int(alert.timestamp.timestamp() * 1000)) if alert.kind == "updated" else ""


def _summary(alert: AlertEvent) -> str:
    return f"[{alert.severity.upper()}] {alert.rule_id} {alert.kind} on {alert.device_id}: {alert.message}"


def _details(alert: AlertEvent) -> list[str]:
    lines = [
        f"alert:     {alert.alert_id}",
        f"rule:      {alert.rule_id}",
        f"severity:  {alert.severity}",
        f"device:    {alert.device_id}",
        f"feeder:    {alert.feeder_id or '-'}",
        f"region:    {alert.region or '-'}",
        f"time:      {alert.timestamp.isoformat()}",
    ]
    if alert.value is not None:
        threshold = f" (threshold {alert.threshold:g})" if alert.threshold is not None else ""
        lines.append(f"value:     {alert.value:g}{threshold}")
    if alert.raised_at is not None:
        lines.append(f"raised at: {alert.raised_at.isoformat()}")
    if alert.actor:
        lines.append(f"by:        {alert.actor}")
    return lines


def for_alert(alert: AlertEvent) -> Notification:
    """The notification of one alert event."""
    text = "\n".join([alert.message, "", *_details(alert)])
    return Notification(alert.alert_id, alert.kind, _occurrence(alert), (alert,), _summary(alert), text)


def for_escalation(alert: AlertEvent, after_s: float) -> Notification:
    """The notification that an alert stayed unacknowledged for `after_s` seconds."""
    minutes = f"{after_s / 60:g} min"
    subject = f"ESCALATED [{alert.severity.upper()}] {alert.rule_id} on {alert.device_id}: unacknowledged for {minutes}"
    text = "\n".join([f"Nobody acknowledged this alert within {minutes}.", "", alert.message, "", *_details(alert)])
    return Notification(alert.alert_id, "escalated", "", (alert,), subject, text)


def for_digest(key: str, alerts: Sequence[AlertEvent], window_s: float) -> Notification:
    """One notification instead of many: the alert events held back during a burst."""
    subject = f"[smartgrid] digest: {len(alerts)} alert notifications in {window_s / 60:g} min"
    lines = [f"{len(alerts)} alert notifications were held back during a burst and are summarised here.", ""]
    lines += [f"{alert.timestamp.isoformat()} {_summary(alert)} ({alert.alert_id})" for alert in alerts]
    return Notification(key, "digest", "", tuple(alerts), subject, "\n".join(lines))
