"""The notify function through its real HTTP CloudEvents interface (functions-framework in a subprocess)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from local.functions import Function
from local.servers.process import free_port
from local.servers.webhook import WebhookReceiver
from shared.cloudevents import CloudEvent, new_event, to_http_binary
from tests.conftest import LocalMail
from tests.identity import Endpoint, Identity
from tests.integration.notify.conftest import (
    BOSS,
    CHANNELS,
    CONTROL_ROOM,
    ON_CALL,
    alert_event,
    mail_to,
    webhooks_of,
)

pytestmark = pytest.mark.integration
SOURCE = Path(__file__).resolve().parents[3] / "functions" / "notify" / "main.py"
PAGER = "pager@grid.example"
FILE = {
    "routes": [*CHANNELS["routes"], {"name": "pager", "severities": ["emergency"], "channels": ["hook"],
                                     "recipients": [PAGER]}],
    "escalations": [{"name": "boss", "after": "PT1S", "channels": ["mail"], "recipients": [BOSS]}],
}


@pytest.fixture
async def notify(notify_env: Callable[..., dict[str, str]], identity: Identity, tmp_path: Path) -> AsyncIterator[Endpoint]:
    """The notify function running under functions-framework, with the data plane's token."""
    env = {**notify_env(FILE), **identity.env}
    port = free_port()
    process = Function("notify", SOURCE).process(port, env["K_SINK"], env, tmp_path / "notify.log")
    await asyncio.to_thread(process.start, port)
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", identity.delivery)
    finally:
        await asyncio.to_thread(process.stop)


async def post(endpoint: Endpoint, event: CloudEvent) -> tuple[int, dict[str, Any]]:
    headers, body = to_http_binary(event)
    async with aiohttp.ClientSession() as session, session.post(
            endpoint.url, data=body, headers={**headers, **endpoint.headers}) as response:
        return response.status, await response.json()


async def test_alerts_ticks_and_redeliveries_over_http(
    notify: Endpoint, mail_sink: LocalMail, webhook_receiver: WebhookReceiver,
) -> None:
    async with aiohttp.ClientSession() as session, session.get(notify.url) as probe:
        assert probe.status == 200

    critical = alert_event()
    critical_id = critical.json()["alert_id"]
    assert await post(notify, critical) == (200, {"sent": 2})
    assert webhooks_of(webhook_receiver, critical_id)[0]["valid"]
    assert len(mail_to(mail_sink, critical_id, ON_CALL)) == 1
    acknowledged = alert_event("acknowledged", alert_id=critical_id, actor="alice",
                               device_id=critical.json()["device_id"])
    assert (await post(notify, acknowledged))[0] == 200

    emergency = alert_event(severity="emergency")
    emergency_id = emergency.json()["alert_id"]
    await webhook_receiver.stop()
    try:
        status, answer = await post(notify, emergency)
    finally:
        await webhook_receiver.start()
    assert status == 503, answer
    assert f"none for {PAGER}" in answer["message"]
    assert len(mail_to(mail_sink, emergency_id, CONTROL_ROOM)) == 1, "the control room got it by mail meanwhile"

    await asyncio.sleep(1.1)  # the breaker's recovery time, and the escalation's delay
    assert await post(notify, emergency) == (200, {"sent": 2}), "the redelivery: the pager, and the escalation"
    assert await post(notify, emergency) == (200, {})
    assert [r["body"]["recipient"] for r in webhooks_of(webhook_receiver, emergency_id)] == [PAGER]
    assert len(mail_to(mail_sink, emergency_id, BOSS)) == 1, "the unacknowledged emergency escalated"
    assert mail_to(mail_sink, emergency_id, BOSS)[0]["Subject"].startswith("ESCALATED [EMERGENCY]")
    assert mail_to(mail_sink, critical_id, BOSS) == [], "the acknowledged alert did not"

    unattended = alert_event()
    assert await post(notify, unattended) == (200, {"sent": 2})
    await asyncio.sleep(1.1)
    tick = new_event("com.smartgrid.notify.tick", "/test", "tick-1")
    assert await post(notify, tick) == (200, {"sent": 1}), "the tick sends escalations that fell due"
    assert len(mail_to(mail_sink, unattended.json()["alert_id"], BOSS)) == 1


async def test_a_bad_event_is_answered_400(notify: Endpoint) -> None:
    event = alert_event()
    broken = new_event(event.type, event.source, "bad-1", {**event.json(), "severity": "fatal"})
    status, answer = await post(notify, broken)
    assert status == 400 and answer["field"] == "data.severity"
