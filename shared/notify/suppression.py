"""Suppression (Redis): a flapping alert is not notified again for each new occurrence within the window."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from shared.notify.alerts import AlertEvent
from shared.stores.redis import Keys


class Suppressor:
    """Within `window_s` of notifying an occurrence, another occurrence of the same dedup key and kind is suppressed.

    The same occurrence (a redelivery, or an update of it) is never suppressed: the ledger
    keeps it from being sent twice.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys, window_s: float, clock: Callable[[], float]) -> None:
        self._redis = redis
        self._keys = keys
        self._window_s = window_s
        self._clock = clock

    async def suppressed(self, alert: AlertEvent) -> bool:
        """True when `alert` is to be suppressed; otherwise it becomes the last notified occurrence."""
        if self._window_s <= 0:
            return False
        key = self._keys("notify", "suppress", alert.dedup_key, alert.kind)
        now = self._clock()
        last_alert, last_at = await self._redis.hmget(key, ["alert_id", "at"])
        if last_alert is not None and last_alert.decode() == alert.alert_id:
            return False
        if last_at is not None and now - float(last_at) < self._window_s:
            return True
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"alert_id": alert.alert_id, "at": repr(now)})
            pipe.expire(key, int(self._window_s) + 60)
            await pipe.execute()
        return False
