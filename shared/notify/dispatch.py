"""Delivering one notification to one target: already sent? held for a digest? rate limited? then channel after channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.notify.attempts import Attempt
from shared.notify.channels import Channel, ChannelError
from shared.notify.digest import DigestBuffer
from shared.notify.ledger import SentLedger
from shared.notify.message import Notification
from shared.notify.ratelimit import RateLimiter
from shared.notify.routing import Target
from shared.resilience import CircuitOpen


@dataclass
class Outcome:
    """The attempts made for one target; `delivered` unless every channel that was tried failed."""

    target: Target
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """False when a channel failed and none sent it: the notification is still owed."""
        statuses = {attempt.status for attempt in self.attempts}
        return "sent" in statuses or "failed" not in statuses

    def failures(self) -> str:
        """The errors of the failed channels, for the answer."""
        return "; ".join(f"{a.channel}: {a.error}" for a in self.attempts if a.status == "failed")


class Dispatcher:
    """Sends a notification to a target through the first channel of its chain that delivers."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        ledger: SentLedger,
        digests: DigestBuffer,
        channel_limits: RateLimiter,
        recipient_limits: RateLimiter,
        clock: Callable[[], float],
    ) -> None:
        self._channels = channels
        self._ledger = ledger
        self._digests = digests
        self._channel_limits = channel_limits
        self._recipient_limits = recipient_limits
        self._clock = clock

    async def deliver(self, notification: Notification, target: Target, *, digestible: bool = True) -> Outcome:
        """Deliver once: a notification the ledger already has for this recipient is not sent again."""
        outcome = Outcome(target)
        if await self._ledger.carrier(notification, target.chain, target.recipient) is not None:
            return outcome
        if digestible and await self._digests.hold(target, notification):
            await self._ledger.record(notification, target.primary, target.recipient)
            outcome.attempts.append(self._attempt(notification, target.primary, target.recipient, "digested",
                                                  "held back for the digest of a burst"))
            return outcome
        if not await self._recipient_limits.admit(target.recipient):
            outcome.attempts.append(self._attempt(notification, target.primary, target.recipient, "rate_limited",
                                                  f"over the rate limit of recipient {target.recipient}"))
            return outcome
        for name in target.chain:
            outcome.attempts.append(await self._try(notification, name, target.recipient))
            if outcome.attempts[-1].status == "sent":
                await self._ledger.record(notification, name, target.recipient)
                break
        return outcome

    def suppressed(self, notification: Notification, target: Target, reason: str) -> Outcome:
        """The outcome of a notification that suppression keeps from `target`: recorded, not sent."""
        return Outcome(target, [self._attempt(notification, target.primary, target.recipient, "suppressed", reason)])

    async def _try(self, notification: Notification, name: str, recipient: str) -> Attempt:
        if not await self._channel_limits.admit(name):
            return self._attempt(notification, name, recipient, "rate_limited", f"over the rate limit of channel {name}")
        try:
            await self._channels[name].send(notification, recipient)
        except (ChannelError, CircuitOpen) as error:
            return self._attempt(notification, name, recipient, "failed", str(error))
        return self._attempt(notification, name, recipient, "sent")

    def _attempt(self, notification: Notification, channel: str, recipient: str, status: str,
                 error: str | None = None) -> Attempt:
        return Attempt(notification, channel, self._channels[channel].kind, recipient, status,
                       datetime.fromtimestamp(self._clock(), UTC), error)
