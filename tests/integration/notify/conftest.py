"""Notifying against real servers: Redis, PostgreSQL, the session's SMTP sink and webhook receiver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.servers.webhook import WebhookReceiver, read_webhooks
from shared.cloudevents import CloudEvent, new_event
from tests.conftest import LocalMail
from tests.integration.eventing.subscriber import Subscriber

CONTROL_ROOM = "control-room@grid.example"
ON_CALL = "on-call@grid.example"
BOSS = "boss@grid.example"
CHANNELS: dict[str, Any] = {
    "channels": {"hook": {"kind": "webhook", "url": "${SMARTGRID_WEBHOOK_URL}", "timeout": 2},
                 "mail": {"kind": "smtp", "timeout": 5}},
    "routes": [
        {"name": "control-room", "severities": ["critical", "emergency"], "channels": ["hook", "mail"],
         "recipients": [CONTROL_ROOM]},
        {"name": "on-call", "severities": ["critical", "emergency"], "channels": ["mail"], "recipients": [ON_CALL]},
    ],
}


@pytest.fixture
def notify_env(
    tmp_path: Path, redis_url: str, domain_dsns: dict[str, str], broker: Subscriber, mail_sink: LocalMail,
    webhook_receiver: WebhookReceiver,
) -> Callable[..., dict[str, str]]:
    """The environment of a notify instance with a channels file of `CHANNELS` updated by `file`, and own Redis keys."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def make(file: dict[str, Any] | None = None, **variables: str) -> dict[str, str]:
        path = tmp_path / f"channels-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump({**CHANNELS, **(file or {})}, sort_keys=False))
        return {
            "SMARTGRID_REDIS_URL": redis_url,
            "SMARTGRID_REDIS_PREFIX": prefix,
            "SMARTGRID_DSN_SMARTGRID": domain_dsns["smartgrid"],
            "K_SINK": f"{broker.url}/broker",
            "SMARTGRID_SMTP_URL": mail_sink.url,
            "SMARTGRID_WEBHOOK_URL": webhook_receiver.url,
            "SMARTGRID_WEBHOOK_SECRET": webhook_receiver.secret,
            "SMARTGRID_CHANNELS_FILE": str(path),
            "SMARTGRID_RETRY_ATTEMPTS": "2",
            "SMARTGRID_RETRY_INITIAL_DELAY": "0.01",
            "SMARTGRID_BREAKER_FAILURES": "2",
            "SMARTGRID_BREAKER_RECOVERY": "1",
            "SMARTGRID_BREAKER_SUCCESSES": "1",
            **variables,
        }

    return make


def alert_event(kind: str = "raised", *, alert_id: str | None = None, severity: str = "critical",
                event_id: str | None = None, **fields: Any) -> CloudEvent:
    """An alert event of a new occurrence (or of `alert_id`), timestamped now."""
    now_ms = round(time.time() * 1000)
    device = fields.pop("device_id", f"S-{uuid.uuid4().hex[:6]}")
    alert_id = alert_id or f"voltage-high:{device}:{now_ms}"
    data = {
        "alert_id": alert_id, "dedup_key": alert_id.rpartition(":")[0], "rule_id": "voltage-high",
        "severity": severity, "device_id": device, "feeder_id": "F-12", "region": "north", "timestamp": now_ms,
        "value": 262.5, "threshold": 253.0, "message": "voltage above 253 V", "raised_at": now_ms, "actor": None,
        **fields,
    }
    return new_event(f"com.smartgrid.alert.{kind}", "/test", event_id or f"{alert_id}:{kind}", data,
                     partitionkey=device)


def mail_to(mail_sink: LocalMail, alert_id: str, recipient: str) -> list[Any]:
    """The messages of one alert the sink received for one recipient."""
    return [m for m in mail_sink.messages() if m["X-Smartgrid-Alert-Id"] == alert_id and m["To"] == recipient]


def webhooks_of(receiver: WebhookReceiver, alert_id: str) -> list[dict[str, Any]]:
    """The webhook requests the receiver recorded about one alert."""
    return [r for r in read_webhooks(receiver.state_dir) if isinstance(r["body"], dict)
            and r["body"].get("alert_id") == alert_id]
