"""The notifier end to end over fake channels: failover, redelivery, suppression, digests, escalations, ticks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pytest

from shared.cloudevents import CloudEvent, InvalidEvent, new_event
from shared.notify.attempts import Attempt
from shared.notify.channels import ChannelUnavailable
from shared.notify.config import (
    ChannelSpec,
    Digest,
    Escalation,
    Limit,
    NotifyConfig,
    Route,
)
from shared.notify.message import Notification
from shared.notify.notifier import NotificationsUndelivered, Notifier
from shared.resilience import CircuitOpen
from shared.validation.catalogue import Catalogue
from tests.unit.notify.factories import alert

ROUTES = (
    Route("urgent", ("hook", "mail"), ("control-room",), severities=frozenset({"critical", "emergency"})),
    Route("everything", ("journal",), ("log-book",)),
)
BOSS = Escalation("boss", 900, ("mail",), ("boss@grid.example",))


@dataclass
class FakeChannel:
    name: str
    kind: str = "webhook"
    failure: Exception | None = None
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, notification: Notification, recipient: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((notification.kind, recipient))

    async def close(self) -> None:
        pass


@dataclass
class FakeAttempts:
    rows: list[Attempt] = field(default_factory=list)

    async def record(self, attempts: Sequence[Attempt]) -> None:
        self.rows += attempts

    def statuses(self) -> list[tuple[str, str, str, str]]:
        return [(a.notification.kind, a.channel, a.recipient, a.status) for a in self.rows]


@dataclass
class FakeSink:
    events: list[CloudEvent] = field(default_factory=list)

    async def send_all(self, events) -> None:
        self.events += events

    async def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture
def channels() -> dict[str, FakeChannel]:
    return {"hook": FakeChannel("hook"), "mail": FakeChannel("mail", "smtp"), "journal": FakeChannel("journal", "log")}


@pytest.fixture
def attempts() -> FakeAttempts:
    return FakeAttempts()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def make(redis, keys, clock, channels, attempts, sink, catalogue):
    def make(**config) -> Notifier:
        specs = {name: ChannelSpec(name, channel.kind) for name, channel in channels.items()}
        return Notifier(NotifyConfig(specs, ROUTES, **config), channels, redis, keys, attempts, sink, catalogue, clock)

    return make


def event(kind: str = "raised", event_id: str = "e-1", **fields) -> CloudEvent:
    data = alert(kind, **fields).to_json()
    del data["kind"]
    return new_event(f"com.smartgrid.alert.{kind}", "/test", event_id, data)


TICK = new_event("com.smartgrid.notify.tick", "/test", "tick-1")


async def test_a_critical_alert_goes_to_the_first_channel_of_each_route(make, channels, attempts, sink) -> None:
    assert await make().handle(event()) == {"sent": 2}
    assert channels["hook"].sent == [("raised", "control-room")] and channels["mail"].sent == []
    assert channels["journal"].sent == [("raised", "log-book")]
    assert sorted(e.type for e in sink.events) == ["com.smartgrid.notification.sent"] * 2
    sent = orjson.loads(sink.events[0].data)
    assert sent["alert_id"] == "voltage-high:S-1:1795341600000" and sent["kind"] == "raised"
    assert sink.events[0].attributes["partitionkey"] == sent["alert_id"]


@pytest.mark.parametrize("failure", [ChannelUnavailable("connection refused"), CircuitOpen("webhook:h:1", 30.0)])
async def test_a_failing_channel_fails_over_to_the_next(make, channels, attempts, sink, failure) -> None:
    channels["hook"].failure = failure
    assert await make().handle(event()) == {"failed": 1, "sent": 2}
    assert channels["mail"].sent == [("raised", "control-room")]
    assert ("raised", "hook", "control-room", "failed") in attempts.statuses()
    assert ("raised", "mail", "control-room", "sent") in attempts.statuses()
    failed = next(e for e in sink.events if e.type == "com.smartgrid.notification.failed")
    assert str(failure) in orjson.loads(failed.data)["error"]


async def test_the_emitted_events_match_their_schemas(make, channels, sink, clock, catalogue) -> None:
    notifier = make(digest=Digest(threshold=1, window_s=60), escalations=(BOSS,))
    channels["hook"].failure = ChannelUnavailable("down")
    for n in range(3):
        await notifier.handle(event(event_id=f"e-{n}", alert_id=f"voltage-high:S-1:{n}"))
    clock.advance(900)
    await notifier.handle(TICK)
    kinds = set()
    for emitted in sink.events:
        data = catalogue.validate(emitted.type, emitted.json())
        kinds.add((emitted.type.rpartition(".")[2], data["kind"]))
    assert kinds == {("sent", "raised"), ("failed", "raised"), ("sent", "digest"), ("failed", "digest"),
                     ("sent", "escalated")}


async def test_when_every_channel_fails_the_event_is_owed_and_a_redelivery_sends_each_once(make, channels,
                                                                                        attempts) -> None:
    notifier = make()
    channels["hook"].failure = channels["mail"].failure = ChannelUnavailable("down")
    with pytest.raises(NotificationsUndelivered, match="none for control-room"):
        await notifier.handle(event())
    assert channels["journal"].sent == [("raised", "log-book")]
    assert [s for s in attempts.statuses() if s[2] == "control-room"] == [
        ("raised", "hook", "control-room", "failed"), ("raised", "mail", "control-room", "failed")]
    channels["mail"].failure = None
    assert await notifier.handle(event()) == {"failed": 1, "sent": 1}, "the journal is not told again"
    assert channels["mail"].sent == [("raised", "control-room")]
    channels["hook"].failure = None
    assert await notifier.handle(event()) == {}, "a second redelivery sends nothing"
    assert channels["hook"].sent == [] and len(channels["journal"].sent) == 1


async def test_a_flapping_alert_is_suppressed_and_recorded(make, channels, attempts) -> None:
    notifier = make(suppression_window_s=300)
    await notifier.handle(event())
    assert await notifier.handle(event(event_id="e-2", alert_id="voltage-high:S-1:1795341660000")) == {"suppressed": 2}
    assert attempts.statuses()[-2:] == [("raised", "hook", "control-room", "suppressed"),
                                        ("raised", "journal", "log-book", "suppressed")]
    assert len(channels["hook"].sent) == 1


async def test_a_recipient_over_its_rate_limit_is_not_sent_to_and_nothing_is_owed(make, channels, attempts) -> None:
    notifier = make(recipient_limit=Limit(1, 3600))
    await notifier.handle(event())
    answer = await notifier.handle(event(event_id="e-2", alert_id="voltage-high:S-1:2"))
    assert answer == {"rate_limited": 2}
    assert len(channels["hook"].sent) == 1


async def test_a_channel_over_its_rate_limit_fails_over(make, channels, attempts) -> None:
    notifier = make(channel_limit=Limit(1, 3600))
    await notifier.handle(event())
    await notifier.handle(event(event_id="e-2", alert_id="voltage-high:S-1:2"))
    assert attempts.statuses()[-3:-1] == [("raised", "hook", "control-room", "rate_limited"),
                                          ("raised", "mail", "control-room", "sent")]


async def test_a_burst_becomes_a_digest_sent_on_a_tick_after_the_window(make, channels, attempts, clock) -> None:
    notifier = make(digest=Digest(threshold=2, window_s=60))
    for n in range(5):
        await notifier.handle(event(event_id=f"e-{n}", alert_id=f"voltage-high:S-1:{n}"))
    assert len(channels["hook"].sent) == 2 and len(channels["journal"].sent) == 2
    assert [s[3] for s in attempts.statuses()].count("digested") == 6
    assert await notifier.handle(TICK) == {}
    clock.advance(60)
    assert await notifier.handle(TICK) == {"sent": 2}
    assert channels["hook"].sent[-1] == ("digest", "control-room")
    digest = attempts.rows[-1].notification
    assert digest.key.startswith("digest:") and len(digest.alerts) == 3
    assert "3 alert notifications" in digest.subject


async def test_an_unacknowledged_alert_escalates_on_a_tick(make, channels, attempts, clock) -> None:
    notifier = make(escalations=(BOSS,))
    await notifier.handle(event())
    clock.advance(899)
    assert await notifier.handle(TICK) == {}
    clock.advance(1)
    assert await notifier.handle(TICK) == {"sent": 1}
    assert channels["mail"].sent == [("escalated", "boss@grid.example")]
    clock.advance(3600)
    assert await notifier.handle(TICK) == {}


async def test_an_escalation_also_falls_due_on_any_event(make, channels, clock) -> None:
    notifier = make(escalations=(BOSS,))
    await notifier.handle(event())
    clock.advance(900)
    await notifier.handle(event(event_id="e-2", alert_id="other", dedup_key="other", severity="info"))
    assert channels["mail"].sent == [("escalated", "boss@grid.example")]


async def test_acknowledging_cancels_the_escalation(make, channels, clock) -> None:
    notifier = make(escalations=(BOSS,))
    await notifier.handle(event())
    clock.advance(600)
    await notifier.handle(event("acknowledged", event_id="e-2", actor="alice"))
    clock.advance(600)
    await notifier.handle(TICK)
    assert ("escalated", "boss@grid.example") not in channels["mail"].sent


async def test_an_escalation_no_channel_delivered_is_tried_again_later(make, channels, attempts, clock) -> None:
    notifier = make(escalations=(BOSS,))
    await notifier.handle(event())
    channels["mail"].failure = ChannelUnavailable("down")
    clock.advance(900)
    assert await notifier.handle(TICK) == {"failed": 1}, "a tick is not redelivered: nothing is owed"
    channels["mail"].failure = None
    clock.advance(60)
    assert await notifier.handle(TICK) == {"sent": 1}


async def test_events_other_than_alerts_and_ticks_are_refused(make) -> None:
    with pytest.raises(InvalidEvent, match="expected a com.smartgrid.alert.\\* event"):
        await make().handle(new_event("com.smartgrid.sensor.reading", "/test", "x", {}))
