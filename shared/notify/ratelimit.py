"""Rate limits (Redis): at most N notifications per window through one channel, or to one recipient."""

from __future__ import annotations

import math
from collections.abc import Callable

import redis.asyncio as aioredis

from shared.notify.config import Limit
from shared.stores.redis import Keys


class RateLimiter:
    """Fixed-window counters per name (a channel or a recipient) within one scope, shared by every replica."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, scope: str, limit: Limit | None,
                 clock: Callable[[], float]) -> None:
        self._redis = redis
        self._keys = keys
        self._scope = scope
        self._limit = limit
        self._clock = clock

    async def admit(self, name: str) -> bool:
        """Count one notification for `name`; False when it is over the limit of the current window."""
        if self._limit is None:
            return True
        window = int(self._clock() // self._limit.window_s)
        key = self._keys("notify", "rate", self._scope, name, str(window))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, math.ceil(self._limit.window_s) + 60)
            count, _ = await pipe.execute()
        return count <= self._limit.count
