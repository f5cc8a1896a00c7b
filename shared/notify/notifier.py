"""The notifier: from alert events to notifications, through routes, suppression, digests, escalations and channels.

`handle` takes one CloudEvent: an alert event (`com.smartgrid.alert.*`) or a tick (the PingSource's
`dev.knative.sources.ping`, or `com.smartgrid.notify.tick`). Every event first sends the
escalations and digests that fell due, then an alert event is notified to each target of its
routes. Every attempt is recorded in `notification_attempts` and, when sent or failed, emitted
as `com.smartgrid.notification.sent` / `.failed`. When every channel of a target failed, the
event is answered 503 (NotificationsUndelivered) so the broker redelivers it; what was delivered
is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

import redis.asyncio as aioredis

from shared.cloudevents import PING_EVENT_TYPE, CloudEvent
from shared.config import Settings
from shared.notify import message
from shared.notify.alerts import AlertEvent
from shared.notify.attempts import AttemptStore
from shared.notify.channels import Channel, build_channels
from shared.notify.config import NotifyConfig, load_notify_config
from shared.notify.digest import DigestBuffer
from shared.notify.dispatch import Dispatcher, Outcome
from shared.notify.escalation import EscalationSchedule
from shared.notify.events import EMITTED_STATUSES, attempt_event
from shared.notify.ledger import SentLedger
from shared.notify.ratelimit import RateLimiter
from shared.notify.routing import Target, targets
from shared.notify.suppression import Suppressor
from shared.resilience import CircuitOpen, Downstreams
from shared.sink import EventSink, SinkRejected, SinkUnavailable
from shared.stores.postgres import Database
from shared.stores.redis import Keys, connect
from shared.validation.catalogue import Catalogue

TICK_TYPES = ("com.smartgrid.notify.tick", PING_EVENT_TYPE)
SOURCE = "/smartgrid/notify"
RETRY_DUE_S = 60.0
log = logging.getLogger("smartgrid.notify")


class NotificationsUndelivered(RuntimeError):
    """Raised when every channel failed for a recipient: the event is answered 503 and redelivered."""


class Notifier:
    """Notifies the recipients of alert events; its state lives in Redis, so any replica continues another's work."""

    def __init__(
        self,
        config: NotifyConfig,
        channels: Mapping[str, Channel],
        redis: aioredis.Redis,
        keys: Keys,
        attempts: AttemptStore,
        sink: EventSink,
        catalogue: Catalogue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._channels = channels
        self._escalations = EscalationSchedule(redis, keys, config.escalations, clock)
        self._digests = DigestBuffer(redis, keys, config.digest, clock)
        self._suppressor = Suppressor(redis, keys, config.suppression_window_s, clock)
        self._dispatcher = Dispatcher(
            channels, SentLedger(redis, keys, clock), self._digests,
            RateLimiter(redis, keys, "channel", config.channel_limit, clock),
            RateLimiter(redis, keys, "recipient", config.recipient_limit, clock),
            clock,
        )
        self._redis = redis
        self._attempts = attempts
        self._sink = sink
        self._catalogue = catalogue
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, catalogue: Catalogue) -> Notifier:
        """The notifier of a function: channels file, Redis, the smartgrid database and the broker from `settings`."""
        config = load_notify_config(settings)
        downstreams = Downstreams.from_settings(settings)
        return cls(
            config, build_channels(config, settings, downstreams), connect(settings.require_redis()),
            Keys(settings.redis_prefix), AttemptStore(Database(settings.dsn("smartgrid"), max_size=2)),
            EventSink(settings.require_sink(), downstreams), catalogue,
        )

    async def handle(self, event: CloudEvent) -> dict[str, int]:
        """Notify one alert event (or only run what fell due, for a tick); the counts of attempts by status."""
        alert = None if event.type in TICK_TYPES else AlertEvent.from_cloudevent(self._catalogue, event)
        if alert is not None:
            await self._escalations.observe(alert)
        outcomes = await self.run_due()
        alert_outcomes = await self.notify(alert) if alert is not None else []
        await self._settle(outcomes + alert_outcomes)
        owed = [outcome for outcome in alert_outcomes if not outcome.delivered]
        if owed:
            raise NotificationsUndelivered(
                f"alert {owed[0].attempts[0].notification.key}: expected a channel to deliver to each recipient, "
                "found " + "; ".join(f"none for {o.target.recipient} ({o.failures()})" for o in owed)
            )
        return dict(Counter(a.status for outcome in outcomes + alert_outcomes for a in outcome.attempts))

    async def notify(self, alert: AlertEvent) -> list[Outcome]:
        """Deliver the notification of one alert event to every target of its routes (or record its suppression)."""
        found = targets(self._config.routes, alert)
        notification = message.for_alert(alert)
        if found and await self._suppressor.suppressed(alert):
            reason = f"another {alert.kind} of {alert.dedup_key} within {self._config.suppression_window_s:g} s"
            return [self._dispatcher.suppressed(notification, target, reason) for target in found]
        return list(await asyncio.gather(*(self._dispatcher.deliver(notification, target) for target in found)))

    async def run_due(self) -> list[Outcome]:
        """Send the escalations and digests that fell due; an undelivered one is due again in a minute."""
        outcomes: list[Outcome] = []
        for due in await self._escalations.claim_due():
            notification = message.for_escalation(due.alert, due.escalation.after_s)
            found = [Target(due.escalation.channels, recipient) for recipient in due.escalation.recipients]
            delivered = await self._deliver_all(notification, found, outcomes)
            if not delivered:
                await self._escalations.retry_later(due, RETRY_DUE_S)
        window_s = self._config.digest.window_s if self._config.digest else 0.0
        for target in await self._digests.due():
            alerts = await self._digests.take(target)
            if not alerts:
                continue
            key = f"digest:{target.primary}:{target.recipient}:{round(self._clock() * 1000)}"
            notification = message.for_digest(key, alerts, window_s)
            if not await self._deliver_all(notification, [target], outcomes):
                await self._digests.give_back(target, alerts, RETRY_DUE_S)
        return outcomes

    async def close(self) -> None:
        """Close the channels' connections, the broker session and Redis."""
        for channel in self._channels.values():
            await channel.close()
        await self._sink.close()
        await self._redis.aclose()

    async def _deliver_all(self, notification: message.Notification, found: Iterable[Target],
                           outcomes: list[Outcome]) -> bool:
        results = await asyncio.gather(*(self._dispatcher.deliver(notification, t, digestible=False) for t in found))
        outcomes += results
        return all(outcome.delivered for outcome in results)

    async def _settle(self, outcomes: list[Outcome]) -> None:
        """Record every attempt, then tell the broker of the sent and failed ones (best effort: the table is the record)."""
        attempts = [attempt for outcome in outcomes for attempt in outcome.attempts]
        await self._attempts.record(attempts)
        events = [attempt_event(a, SOURCE) for a in attempts if a.status in EMITTED_STATUSES]
        try:
            await self._sink.send_all(events)
        except (SinkUnavailable, SinkRejected, CircuitOpen) as error:
            log.warning("notification events not emitted (the attempts are recorded): %s", error)
