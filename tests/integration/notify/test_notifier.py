"""The notifier as the function builds it, against Redis, PostgreSQL, the SMTP sink and the webhook receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from local.servers.webhook import WebhookReceiver
from shared.config import Settings
from shared.notify.attempts import AttemptStore
from shared.notify.notifier import NotificationsUndelivered, Notifier
from shared.notify.signing import SIGNATURE_HEADER, verify
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from tests.conftest import LocalMail
from tests.integration.eventing.subscriber import Subscriber
from tests.integration.notify.conftest import (
    CONTROL_ROOM,
    ON_CALL,
    alert_event,
    mail_to,
    webhooks_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture
async def attempts(domain_dsns: dict[str, str]) -> AsyncIterator[AttemptStore]:
    database = Database(domain_dsns["smartgrid"], max_size=1)
    yield AttemptStore(database)
    await database.close()


@pytest.fixture
async def notifier(notify_env: Callable[..., dict[str, str]], catalogue: Catalogue) -> AsyncIterator[Notifier]:
    notifier = Notifier.from_settings(Settings.from_env(notify_env()), catalogue)
    yield notifier
    await notifier.close()


async def statuses(attempts: AttemptStore, alert_id: str) -> list[tuple[str, str, str, str]]:
    return [(row["event_type"], row["channel"], row["recipient"], row["status"])
            for row in await attempts.for_alert(alert_id)]


async def test_a_critical_alert_reaches_mail_and_a_signed_webhook_once(
    notifier: Notifier, attempts: AttemptStore, mail_sink: LocalMail, webhook_receiver: WebhookReceiver,
    broker: Subscriber,
) -> None:
    event = alert_event()
    alert_id = event.json()["alert_id"]
    assert await notifier.handle(event) == {"sent": 2}
    [hook] = webhooks_of(webhook_receiver, alert_id)
    assert hook["valid"] and hook["body"]["recipient"] == CONTROL_ROOM and hook["body"]["kind"] == "raised"
    [mail] = mail_to(mail_sink, alert_id, ON_CALL)
    assert "voltage above 253 V" in mail.get_body(("plain",)).get_content()
    assert mail["Subject"].startswith("[CRITICAL] voltage-high raised on")
    assert await statuses(attempts, alert_id) == [("raised", "hook", CONTROL_ROOM, "sent"),
                                                  ("raised", "mail", ON_CALL, "sent")]
    sent = await broker.wait_for("broker", 2)
    assert {r.event.type for r in sent} == {"com.smartgrid.notification.sent"}

    assert await notifier.handle(event) == {}, "a redelivered event sends nothing twice"
    assert len(webhooks_of(webhook_receiver, alert_id)) == 1 and len(mail_to(mail_sink, alert_id, ON_CALL)) == 1
    assert len(await attempts.for_alert(alert_id)) == 2


async def test_the_receiver_verifies_what_the_channel_signed(
    notifier: Notifier, webhook_receiver: WebhookReceiver,
) -> None:
    event = alert_event()
    await notifier.handle(event)
    [hook] = webhooks_of(webhook_receiver, event.json()["alert_id"])
    assert hook["headers"][SIGNATURE_HEADER].startswith("t=")
    with pytest.raises(ValueError):
        verify("another secret", b"{}", hook["headers"][SIGNATURE_HEADER])


async def test_a_receiver_that_is_down_opens_the_breaker_mail_carries_and_nothing_is_lost(
    notifier: Notifier, attempts: AttemptStore, mail_sink: LocalMail, webhook_receiver: WebhookReceiver,
) -> None:
    events = [alert_event() for _ in range(5)]
    ids = [event.json()["alert_id"] for event in events]
    await webhook_receiver.stop()
    try:
        for event in events[:3]:
            assert await notifier.handle(event) == {"failed": 1, "sent": 2}
    finally:
        await webhook_receiver.start()
    for alert_id in ids[:3]:
        assert [s[1:] for s in await statuses(attempts, alert_id)] == [
            ("hook", CONTROL_ROOM, "failed"), ("mail", CONTROL_ROOM, "sent"), ("mail", ON_CALL, "sent")]
        assert len(mail_to(mail_sink, alert_id, CONTROL_ROOM)) == 1
    errors = [row["error"] for alert_id in ids[:3] for row in await attempts.for_alert(alert_id)
              if row["status"] == "failed"]
    assert "unreachable" in errors[0] and "unreachable" in errors[1]
    assert "circuit breaker" in errors[2], "the third call did not even try: the breaker was open"

    await _wait_for_recovery()
    assert await notifier.handle(events[3]) == {"sent": 2}, "the half-open probe succeeds and closes the breaker"
    assert await notifier.handle(events[4]) == {"sent": 2}
    for alert_id in ids[3:]:
        [hook] = webhooks_of(webhook_receiver, alert_id)
        assert hook["valid"] and mail_to(mail_sink, alert_id, CONTROL_ROOM) == []


async def test_when_no_channel_delivers_the_event_is_owed_until_one_does(
    notify_env: Callable[..., dict[str, str]], catalogue: Catalogue, attempts: AttemptStore,
    webhook_receiver: WebhookReceiver,
) -> None:
    only_hook = {"routes": [{"name": "hook-only", "channels": ["hook"], "recipients": [CONTROL_ROOM]}]}
    notifier = Notifier.from_settings(Settings.from_env(notify_env(only_hook)), catalogue)
    event = alert_event()
    alert_id = event.json()["alert_id"]
    await webhook_receiver.stop()
    try:
        with pytest.raises(NotificationsUndelivered, match=f"alert {alert_id}: expected a channel to deliver"):
            await notifier.handle(event)
    finally:
        await webhook_receiver.start()
    await _wait_for_recovery()
    assert await notifier.handle(event) == {"sent": 1}
    assert await notifier.handle(event) == {}
    assert len(webhooks_of(webhook_receiver, alert_id)) == 1
    assert [s[3] for s in await statuses(attempts, alert_id)] == ["failed", "sent"]
    await notifier.close()


async def test_a_flapping_alert_is_suppressed_and_each_attempt_recorded(
    attempts: AttemptStore, notify_env: Callable[..., dict[str, str]], catalogue: Catalogue, mail_sink: LocalMail,
) -> None:
    suppressing = Notifier.from_settings(Settings.from_env(notify_env({"suppression": {"window": "PT5M"}})), catalogue)
    device = f"S-{uuid.uuid4().hex[:6]}"
    first = alert_event(device_id=device, alert_id=f"voltage-high:{device}:1")
    second = alert_event(device_id=device, alert_id=f"voltage-high:{device}:2")
    assert await suppressing.handle(first) == {"sent": 2}
    assert await suppressing.handle(second) == {"suppressed": 2}
    assert [s[3] for s in await statuses(attempts, second.json()["alert_id"])] == ["suppressed", "suppressed"]
    assert mail_to(mail_sink, second.json()["alert_id"], ON_CALL) == []
    await suppressing.close()


async def _wait_for_recovery() -> None:
    """Past SMARTGRID_BREAKER_RECOVERY (1 s): the next call is the half-open probe."""
    await asyncio.sleep(1.1)
