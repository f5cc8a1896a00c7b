"""The ledger of delivered notifications (Redis): a redelivered alert event sends nothing twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from shared.notify.message import Notification
from shared.stores.redis import Keys

DEFAULT_TTL_S = 7 * 24 * 3600


class SentLedger:
    """Per notification, the (channel, recipient) pairs that carried it or held it for a digest."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Callable[[], float], *,
                 ttl_s: int = DEFAULT_TTL_S) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._ttl_s = ttl_s

    async def carrier(self, notification: Notification, chain: Sequence[str], recipient: str) -> str | None:
        """The channel of `chain` that already took this notification for `recipient`, or None."""
        fields = [_field(channel, recipient) for channel in chain]
        values = await self._redis.hmget(self._key(notification), fields)
        return next((channel for channel, value in zip(chain, values) if value is not None), None)

    async def record(self, notification: Notification, channel: str, recipient: str) -> None:
        """Note that `channel` took this notification for `recipient`."""
        key = self._key(notification)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, _field(channel, recipient), repr(self._clock()))
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    def _key(self, notification: Notification) -> str:
        return self._keys("notify", "sent", notification.identity)


def _field(channel: str, recipient: str) -> str:
    return f"{channel}\x1f{recipient}"
