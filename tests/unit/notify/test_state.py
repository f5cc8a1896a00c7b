"""Suppression, rate limits, digests and escalations over time (a fake clock; Redis in memory)."""

from __future__ import annotations

from shared.notify import message
from shared.notify.config import Digest, Escalation, Limit
from shared.notify.digest import DigestBuffer
from shared.notify.escalation import EscalationSchedule
from shared.notify.ledger import SentLedger
from shared.notify.ratelimit import RateLimiter
from shared.notify.routing import Target
from shared.notify.suppression import Suppressor
from tests.unit.notify.factories import alert

TARGET = Target(("hook", "mail"), "control-room")


def occurrence(n: int, kind: str = "raised", **fields):
    return alert(kind, alert_id=f"voltage-high:S-1:{n}", **fields)


# --- ledger ---------------------------------------------------------------------------


async def test_the_ledger_knows_which_channel_carried_a_notification(redis, keys, clock) -> None:
    ledger = SentLedger(redis, keys, clock)
    raised = message.for_alert(occurrence(1))
    assert await ledger.carrier(raised, ("hook", "mail"), "control-room") is None
    await ledger.record(raised, "mail", "control-room")
    assert await ledger.carrier(raised, ("hook", "mail"), "control-room") == "mail"
    assert await ledger.carrier(raised, ("hook", "mail"), "duty") is None
    assert await ledger.carrier(message.for_alert(occurrence(1, "cleared")), ("hook", "mail"), "control-room") is None


async def test_each_update_is_a_notification_of_its_own(redis, keys, clock) -> None:
    first = message.for_alert(occurrence(1, "updated"))
    clock.advance(60)
    later = message.for_alert(occurrence(1, "updated", timestamp=first.alerts[0].timestamp.replace(minute=1)))
    assert first.identity != later.identity
    assert message.for_alert(occurrence(1)).identity == message.for_alert(occurrence(1)).identity


# --- suppression ----------------------------------------------------------------------


async def test_a_new_occurrence_within_the_window_is_suppressed(redis, keys, clock) -> None:
    suppressor = Suppressor(redis, keys, 300, clock)
    assert not await suppressor.suppressed(occurrence(1))
    clock.advance(120)
    assert not await suppressor.suppressed(occurrence(1)), "a redelivery of the same occurrence is not suppressed"
    assert await suppressor.suppressed(occurrence(2))
    assert not await suppressor.suppressed(occurrence(2, "cleared")), "another kind has a window of its own"
    assert not await suppressor.suppressed(occurrence(3, dedup_key="voltage-high:S-2"))
    clock.advance(181)
    assert not await suppressor.suppressed(occurrence(4)), "the window counts from the last notified occurrence"
    assert await suppressor.suppressed(occurrence(5))


async def test_no_window_no_suppression(redis, keys, clock) -> None:
    suppressor = Suppressor(redis, keys, 0, clock)
    assert not await suppressor.suppressed(occurrence(1))
    assert not await suppressor.suppressed(occurrence(2))


# --- rate limits ----------------------------------------------------------------------


async def test_a_rate_limit_admits_n_per_window(redis, keys, clock) -> None:
    clock.now = 6000.0  # the start of a 60 s window
    limiter = RateLimiter(redis, keys, "recipient", Limit(3, 60), clock)
    assert [await limiter.admit("ops") for _ in range(4)] == [True, True, True, False]
    assert await limiter.admit("duty"), "each name counts on its own"
    clock.advance(59)
    assert not await limiter.admit("ops")
    clock.advance(1)
    assert await limiter.admit("ops"), "a new window"


async def test_without_a_limit_everything_is_admitted(redis, keys, clock) -> None:
    limiter = RateLimiter(redis, keys, "channel", None, clock)
    assert all([await limiter.admit("hook") for _ in range(100)])


# --- digests --------------------------------------------------------------------------


async def test_past_the_threshold_notifications_wait_for_one_digest(redis, keys, clock) -> None:
    digests = DigestBuffer(redis, keys, Digest(threshold=3, window_s=60), clock)
    held = []
    for n in range(6):
        held.append(await digests.hold(TARGET, message.for_alert(occurrence(n))))
        clock.advance(1)
    assert held == [False, False, False, True, True, True]
    assert await digests.hold(TARGET, message.for_alert(occurrence(5))), "a redelivery is counted once and held"
    assert not await digests.hold(Target(("mail",), "control-room"), message.for_alert(occurrence(9)))
    assert await digests.due() == []
    clock.advance(56)
    assert await digests.due() == []
    clock.advance(1)  # 60 s after the first held notification (at +3 s)
    assert await digests.due() == [TARGET]
    alerts = await digests.take(TARGET)
    assert [a.alert_id for a in alerts] == [f"voltage-high:S-1:{n}" for n in (3, 4, 5)]
    assert await digests.take(TARGET) == [], "taken once"
    assert await digests.due() == []


async def test_after_the_burst_notifications_go_out_one_by_one_again(redis, keys, clock) -> None:
    digests = DigestBuffer(redis, keys, Digest(threshold=2, window_s=60), clock)
    for n in range(3):
        await digests.hold(TARGET, message.for_alert(occurrence(n)))
    clock.advance(61)
    assert not await digests.hold(TARGET, message.for_alert(occurrence(10)))


async def test_a_digest_that_could_not_be_sent_is_given_back(redis, keys, clock) -> None:
    digests = DigestBuffer(redis, keys, Digest(threshold=1, window_s=60), clock)
    for n in range(3):
        await digests.hold(TARGET, message.for_alert(occurrence(n)))
    clock.advance(60)
    alerts = await digests.take(TARGET)
    await digests.give_back(TARGET, alerts, retry_in_s=30)
    assert await digests.due() == []
    clock.advance(30)
    assert await digests.take(TARGET) == alerts


async def test_without_a_digest_nothing_is_held(redis, keys, clock) -> None:
    digests = DigestBuffer(redis, keys, None, clock)
    assert not any([await digests.hold(TARGET, message.for_alert(occurrence(n))) for n in range(50)])


# --- escalations ----------------------------------------------------------------------

BOSS = Escalation("boss", 900, ("mail",), ("boss@grid.example",))
DIRECTOR = Escalation("director", 3600, ("mail",), ("director@grid.example",), severities=frozenset({"emergency"}))


async def test_an_unacknowledged_critical_alert_escalates_after_the_delay(redis, keys, clock) -> None:
    schedule = EscalationSchedule(redis, keys, (BOSS, DIRECTOR), clock)
    start = clock.now
    await schedule.observe(occurrence(1))
    assert await schedule.pending("voltage-high:S-1:1") == [start + 900]
    clock.advance(899)
    assert await schedule.claim_due() == []
    clock.advance(1)
    (due,) = await schedule.claim_due()
    assert (due.index, due.escalation, due.alert.alert_id) == (0, BOSS, "voltage-high:S-1:1")
    assert await schedule.claim_due() == [], "claimed once"


async def test_a_redelivered_raise_keeps_the_first_due_time(redis, keys, clock) -> None:
    schedule = EscalationSchedule(redis, keys, (BOSS,), clock)
    first = clock.now
    await schedule.observe(occurrence(1))
    clock.advance(300)
    await schedule.observe(occurrence(1))
    assert await schedule.pending("voltage-high:S-1:1") == [first + 900]


async def test_acknowledging_or_clearing_cancels_the_escalation(redis, keys, clock) -> None:
    schedule = EscalationSchedule(redis, keys, (BOSS,), clock)
    await schedule.observe(occurrence(1))
    await schedule.observe(occurrence(2))
    clock.advance(600)
    await schedule.observe(occurrence(1, "acknowledged", actor="alice"))
    await schedule.observe(occurrence(2, "cleared"))
    await schedule.observe(occurrence(1))  # a late redelivery of the raise
    clock.advance(3600)
    assert await schedule.claim_due() == []
    assert await schedule.pending("voltage-high:S-1:1") == []


async def test_only_escalating_severities_are_scheduled_and_an_eased_alert_is_not_escalated(redis, keys, clock) -> None:
    schedule = EscalationSchedule(redis, keys, (BOSS, DIRECTOR), clock)
    start = clock.now
    await schedule.observe(occurrence(1, severity="warning"))
    assert await schedule.pending("voltage-high:S-1:1") == []
    await schedule.observe(occurrence(1, "updated", severity="emergency"))
    assert await schedule.pending("voltage-high:S-1:1") == [start + 900, start + 3600]
    await schedule.observe(occurrence(1, "updated", severity="critical"))
    assert await schedule.pending("voltage-high:S-1:1") == [start + 900]
    clock.advance(900)
    (due,) = await schedule.claim_due()
    assert due.alert.severity == "critical" and due.alert.kind == "updated", "the latest event is told"


async def test_an_escalation_that_failed_is_due_again_later(redis, keys, clock) -> None:
    schedule = EscalationSchedule(redis, keys, (BOSS,), clock)
    await schedule.observe(occurrence(1))
    clock.advance(900)
    (due,) = await schedule.claim_due()
    await schedule.retry_later(due, 60)
    clock.advance(59)
    assert await schedule.claim_due() == []
    clock.advance(1)
    assert [d.alert.alert_id for d in await schedule.claim_due()] == ["voltage-high:S-1:1"]
