"""Escalations (Redis): an alert that stays unacknowledged is told to more people after a delay.

Due escalations are members `<index>|<alert_id>` of one sorted set scored by the time they fall
due, so any replica can send them: on every event, and on the periodic tick. Acknowledging or
clearing the alert cancels them; the latest event of the alert is kept for the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from shared.notify.alerts import AlertEvent
from shared.notify.config import Escalation
from shared.stores.redis import Keys

CLOSING_KINDS = ("acknowledged", "cleared")
CLOSED_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class DueEscalation:
    """An escalation whose time has come, claimed by this replica."""

    index: int
    escalation: Escalation
    alert: AlertEvent


class EscalationSchedule:
    """Schedules, cancels and hands out the escalations of the channels file."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, escalations: tuple[Escalation, ...],
                 clock: Callable[[], float]) -> None:
        self._redis = redis
        self._keys = keys
        self._escalations = escalations
        self._clock = clock
        self._due = keys("notify", "escalation", "due")
        self._ttl_s = int(max((e.after_s for e in escalations), default=0)) + CLOSED_TTL_S

    async def observe(self, alert: AlertEvent) -> None:
        """Schedule the escalations an open alert's severity calls for; cancel them when it is acknowledged or cleared."""
        if not self._escalations:
            return
        if alert.kind in CLOSING_KINDS:
            await self._close(alert.alert_id)
            return
        if await self._redis.exists(self._closed(alert.alert_id)):
            return  # a late redelivery of an alert already acknowledged or cleared
        now = self._clock()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._alert(alert.alert_id), orjson.dumps(alert.to_json()), ex=self._ttl_s)
            for index, escalation in enumerate(self._escalations):
                member = _member(index, alert.alert_id)
                if alert.severity in escalation.severities:
                    pipe.zadd(self._due, {member: now + escalation.after_s}, nx=True)
                else:
                    pipe.zrem(self._due, member)
            await pipe.execute()

    async def claim_due(self) -> list[DueEscalation]:
        """The escalations due now, each removed from the schedule so that no other replica sends it too."""
        claimed = []
        for member in await self._redis.zrangebyscore(self._due, "-inf", self._clock()):
            if not await self._redis.zrem(self._due, member):
                continue  # another replica claimed it
            index_text, _, alert_id = member.decode().partition("|")
            stored = await self._redis.get(self._alert(alert_id))
            if stored is not None and int(index_text) < len(self._escalations):
                index = int(index_text)
                alert = AlertEvent.from_json(orjson.loads(stored))
                claimed.append(DueEscalation(index, self._escalations[index], alert))
        return claimed

    async def retry_later(self, due: DueEscalation, delay_s: float) -> None:
        """Put an escalation that could not be delivered back, due again in `delay_s` seconds."""
        await self._redis.zadd(self._due, {_member(due.index, due.alert.alert_id): self._clock() + delay_s}, nx=True)

    async def pending(self, alert_id: str) -> list[float]:
        """When the escalations of `alert_id` fall due (epoch s), earliest first."""
        scores = [await self._redis.zscore(self._due, _member(index, alert_id))
                  for index in range(len(self._escalations))]
        return sorted(score for score in scores if score is not None)

    async def _close(self, alert_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._due, *(_member(index, alert_id) for index in range(len(self._escalations))))
            pipe.delete(self._alert(alert_id))
            pipe.set(self._closed(alert_id), b"1", ex=self._ttl_s)
            await pipe.execute()

    def _alert(self, alert_id: str) -> str:
        return self._keys("notify", "escalation", "alert", alert_id)

    def _closed(self, alert_id: str) -> str:
        return self._keys("notify", "escalation", "closed", alert_id)


def _member(index: int, alert_id: str) -> str:
    return f"{index}|{alert_id}"
