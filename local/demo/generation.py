"""Registered generation: the fleet's PV meters entered in the platform's registry (Redis) before any
reading, so that only a meter without registered generation raises a reverse-flow alert."""

from __future__ import annotations

from collections.abc import Iterable

from shared.alerting.statestore import StateStore
from shared.stores import redis


async def register_generation(redis_url: str, prefix: str, meter_ids: Iterable[str]) -> frozenset[str]:
    """Register generation at the meters; return every meter the platform now knows to have generation."""
    client = redis.connect(redis_url)
    try:
        states = StateStore(client, redis.Keys(prefix))
        await states.register_generation(meter_ids)
        return await states.generation()
    finally:
        await client.aclose()
