"""Rule state in Redis, so that any replica of detect continues where another stopped.

Keys (under SMARTGRID_REDIS_PREFIX): `alerting:device:<id>` one JSON DeviceState per device;
`alerting:deadlines:<group>` a sorted set of a group's devices by missing-data deadline;
`alerting:outbox` a hash of transitions not yet stored and published, by event id;
`alerting:clocks` the event-time clock of each group, `<at>:<wall>`. A group is a kind of device on
one feeder (`sensor:F-01`): its readings take one path (HTTP, a gateway's partition), so a path that
lags behind another does not make the first path's devices look silent;
`alerting:generation` the set of meters with registered generation.

Every change of device states runs as an optimistic transaction (WATCH, read, compute, MULTI/EXEC,
again on conflict), and writes its transitions to the outbox in the same transaction: a crash after
it loses nothing, the next call publishes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.alerting.engine import LIFE_ORDER, DeviceState, Transition
from shared.stores.redis import Keys, StateConflict

Change = Callable[[dict[str, DeviceState]], list[Transition]]
Deadline = Callable[[DeviceState], float | None]
# The clock follows event time: the newest reading's time, plus the wall time passed since it came.
_ADVANCE = """
local clock = redis.call('HGET', KEYS[1], ARGV[1])
if not clock or tonumber(ARGV[2]) > tonumber(string.match(clock, '^[^:]+')) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
end
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
MAX_CONFLICTS = 50
PUBLISHER_LEASE_MS = 30_000


def _clock_time(clock: str, wall_now: float) -> float:
    """A group's time: its newest reading's time plus the wall time passed since it came."""
    at, wall = clock.split(":")
    return float(at) + max(0.0, wall_now - float(wall))


class StateStore:
    """Device states, deadlines, outbox, clock and generation registry of the rule engine."""

    def __init__(self, client: aioredis.Redis, keys: Keys, *, wall: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._key = keys
        self._wall = wall
        self._advance = client.register_script(_ADVANCE)
        self._release = client.register_script(_RELEASE)

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._redis.aclose()

    async def change(self, device_ids: Iterable[str], change: Change, deadline: Deadline) -> list[Transition]:
        """Apply `change` to the devices' states atomically; store them, their deadlines and the outbox."""
        keys = {device: self._key("alerting", "device", device) for device in dict.fromkeys(device_ids)}
        if not keys:
            return []
        for _ in range(MAX_CONFLICTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*keys.values())
                    stored = await pipe.mget(*keys.values())
                    states = {
                        device: DeviceState.from_json(raw) if raw else DeviceState(device)
                        for device, raw in zip(keys, stored)
                    }
                    transitions = change(states)
                    pipe.multi()
                    self._write(pipe, keys, states, transitions, deadline)
                    await pipe.execute()
                    return transitions
                except WatchError:
                    continue
        raise StateConflict(f"expected to update {len(keys)} device states, found them changing "
                            f"{MAX_CONFLICTS} times in a row")

    def _write(self, pipe: aioredis.client.Pipeline, keys: dict[str, str], states: dict[str, DeviceState],
               transitions: list[Transition], deadline: Deadline) -> None:
        pipe.mset({keys[device]: state.to_json() for device, state in states.items()})
        for group in {state.group for state in states.values() if state.kind}:
            deadlines = self._key("alerting", "deadlines", group)
            members = [device for device, state in states.items() if state.group == group]
            due = {device: at for device in members if (at := deadline(states[device])) is not None}
            if due:
                pipe.zadd(deadlines, due)
            if len(due) < len(members):
                pipe.zrem(deadlines, *(device for device in members if device not in due))
        if transitions:
            pipe.hset(self._key("alerting", "outbox"), mapping={t.event_id: t.to_json() for t in transitions})

    async def state(self, device_id: str) -> DeviceState | None:
        """One device's state, None when the engine never saw it."""
        raw = await self._redis.get(self._key("alerting", "device", device_id))
        return DeviceState.from_json(raw) if raw else None

    async def due(self, limit: int = 1000) -> dict[str, float]:
        """Devices whose missing-data deadline has passed on their group's clock, with that clock's time."""
        clocks = {group.decode(): _clock_time(raw.decode(), self._wall())
                  for group, raw in (await self._redis.hgetall(self._key("alerting", "clocks"))).items()}
        async with self._redis.pipeline(transaction=False) as pipe:
            for group, now in clocks.items():
                pipe.zrangebyscore(self._key("alerting", "deadlines", group), "-inf", now, 0, limit)
            found = await pipe.execute()
        return {member.decode(): now for now, members in zip(clocks.values(), found) for member in members}

    async def has_outbox(self) -> bool:
        """True when transitions wait in the outbox."""
        return bool(await self._redis.hlen(self._key("alerting", "outbox")))

    async def outbox(self) -> list[Transition]:
        """Transitions not yet stored and published: by alert occurrence, each in its life's order."""
        entries = await self._redis.hvals(self._key("alerting", "outbox"))
        return sorted((Transition.from_json(entry) for entry in entries),
                      key=lambda t: (t.raised_at, t.alert_id, LIFE_ORDER[t.change], t.at))

    async def lease_publisher(self, token: str) -> bool:
        """Become the one replica publishing the outbox (for at most PUBLISHER_LEASE_MS); False when another is."""
        return bool(await self._redis.set(self._key("alerting", "publisher"), token, nx=True, px=PUBLISHER_LEASE_MS))

    async def end_publisher_lease(self, token: str) -> None:
        """Give the publisher lease back, if it still is ours."""
        await self._release(keys=[self._key("alerting", "publisher")], args=[token])

    async def enqueue(self, transitions: Iterable[Transition]) -> None:
        """Put transitions made outside `change` (an operator's acknowledgement) into the outbox."""
        entries = {t.event_id: t.to_json() for t in transitions}
        if entries:
            await self._redis.hset(self._key("alerting", "outbox"), mapping=entries)

    async def reject(self, transition: Transition, reason: str) -> None:
        """Move a change the database refused from the outbox to `alerting:rejected`, with the reason."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("alerting", "rejected"), transition.event_id,
                      orjson.dumps({"transition": transition, "reason": reason}))
            pipe.hdel(self._key("alerting", "outbox"), transition.event_id)
            await pipe.execute()

    async def published(self, transitions: Iterable[Transition]) -> None:
        """Forget transitions that are stored and published."""
        ids = [t.event_id for t in transitions]
        if ids:
            await self._redis.hdel(self._key("alerting", "outbox"), *ids)

    async def advance_clock(self, group: str, newest_at: float) -> None:
        """Move a group's event-time clock to `newest_at` if it is newer."""
        await self._advance(keys=[self._key("alerting", "clocks")], args=[group, newest_at, self._wall()])

    async def generation(self) -> frozenset[str]:
        """Meters with registered generation (they may export)."""
        return frozenset(member.decode() for member in await self._redis.smembers(self._key("alerting", "generation")))

    async def register_generation(self, meter_ids: Iterable[str]) -> int:
        """Register generation at meters; returns how many were new."""
        meters = list(meter_ids)
        return await self._redis.sadd(self._key("alerting", "generation"), *meters) if meters else 0
