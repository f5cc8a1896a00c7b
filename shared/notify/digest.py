"""Digests (Redis): past `threshold` notifications to one target within the window, the rest wait for one digest.

Each target (channel chain and recipient) has a sliding window of the notifications it was
given. Once it holds more than the threshold, further notifications are held back in the
target's open digest, which is due `window` seconds after its first held notification; the
notifier sends it as one message on the next event or tick after that time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
import redis.asyncio as aioredis

from shared.notify.alerts import AlertEvent
from shared.notify.config import Digest
from shared.notify.message import Notification
from shared.notify.routing import Target
from shared.stores.redis import Keys


def _member(target: Target) -> str:
    return orjson.dumps([list(target.chain), target.recipient]).decode()


def _target(member: bytes) -> Target:
    chain, recipient = orjson.loads(member)
    return Target(tuple(chain), recipient)


def _keep(pipe: aioredis.client.Pipeline, items: str, alerts: Sequence[AlertEvent]) -> None:
    """Queue each alert event into the digest's hash, once per occurrence and kind."""
    for alert in alerts:
        pipe.hsetnx(items, f"{alert.alert_id}|{alert.kind}|{alert.timestamp.isoformat()}", orjson.dumps(alert.to_json()))


class DigestBuffer:
    """Counts notifications per target and holds back those past the threshold until their digest is due."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, digest: Digest | None, clock: Callable[[], float]) -> None:
        self._redis = redis
        self._keys = keys
        self.digest = digest
        self._clock = clock
        self._due = keys("notify", "digest", "due")

    async def hold(self, target: Target, notification: Notification) -> bool:
        """Count `notification` for `target`; True when it is held for the digest instead of being sent now."""
        if self.digest is None:
            return False
        member, now, window = _member(target), self._clock(), self.digest.window_s
        seen = self._keys("notify", "digest", "seen", member)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(seen, "-inf", now - window)
            pipe.zadd(seen, {notification.identity: now}, nx=True)
            pipe.zcard(seen)
            pipe.expire(seen, int(window) + 60)
            _, _, count, _ = await pipe.execute()
        if count <= self.digest.threshold:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            _keep(pipe, self._items(member), notification.alerts)
            pipe.zadd(self._due, {member: now + window}, nx=True)
            await pipe.execute()
        return True

    async def due(self) -> list[Target]:
        """The targets whose digest is due now."""
        members = await self._redis.zrangebyscore(self._due, "-inf", self._clock())
        return [_target(member) for member in members]

    async def take(self, target: Target) -> list[AlertEvent]:
        """Claim the due digest of `target` and empty it: its alert events, oldest first (none when another replica took it)."""
        member = _member(target)
        if not await self._redis.zrem(self._due, member):
            return []
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._items(member))
            pipe.delete(self._items(member))
            items, _ = await pipe.execute()
        alerts = [AlertEvent.from_json(orjson.loads(value)) for value in items.values()]
        return sorted(alerts, key=lambda alert: alert.timestamp)

    async def give_back(self, target: Target, alerts: Sequence[AlertEvent], retry_in_s: float) -> None:
        """Put a digest that could not be delivered back, due again in `retry_in_s` seconds."""
        member = _member(target)
        async with self._redis.pipeline(transaction=True) as pipe:
            _keep(pipe, self._items(member), alerts)
            pipe.zadd(self._due, {member: self._clock() + retry_in_s}, nx=True)
            await pipe.execute()

    def _items(self, member: str) -> str:
        return self._keys("notify", "digest", "items", member)
