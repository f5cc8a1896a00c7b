"""Detection: readings in, alert transitions out, stored and published once.

For each event: its readings become observations; the engine applies them to the devices' states
in Redis (one transaction, transitions into the outbox); devices past their missing-data deadline
are swept; then the outbox is stored in PostgreSQL and published to the broker, and emptied.
A ping (`dev.knative.sources.ping`, a PingSource's event) only sweeps and publishes. Redis calls
go through the `redis` downstream (retries, circuit breaker).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from shared.alerting.conditions import Context
from shared.alerting.engine import RuleEngine, Transition, clock_group
from shared.alerting.observations import Observation, from_meter, from_sensor
from shared.alerting.outbox import Publisher
from shared.alerting.statestore import StateStore
from shared.cloudevents import PING_EVENT_TYPE, CloudEvent
from shared.readings.decoding import Readings
from shared.readings.store import SENSOR_READINGS
from shared.resilience import Downstream

SOURCE = "/smartgrid/functions/detect"


class Detector:
    """Runs the rule engine over the readings of events, with state in Redis and alerts in PostgreSQL."""

    def __init__(
        self,
        decode: Callable[[CloudEvent], Awaitable[Readings]],
        engine: RuleEngine,
        states: StateStore,
        publisher: Publisher,
        *,
        redis: Downstream,
    ) -> None:
        self._decode = decode
        self._engine = engine
        self._states = states
        self._publisher = publisher
        self._redis = redis

    async def detect(self, event: CloudEvent) -> dict[str, Any]:
        """Evaluate the rules on an event's readings (or only sweep, for a ping); publish the transitions."""
        observed = 0
        if event.type != PING_EVENT_TYPE:
            observations = observations_of(await self._decode(event))
            observed = len(observations)
            await self._redis.call(lambda: self.observe(observations), what=f"apply {observed} observations")
        await self._redis.call(self.sweep, what="sweep for missing data")
        published = await self._publisher.publish()
        return {"observed": observed, "transitions": published}

    async def observe(self, observations: list[Observation]) -> list[Transition]:
        """Apply observations to their devices' states, in time order per device."""
        if not observations:
            return []
        by_device: dict[str, list[Observation]] = defaultdict(list)
        for observation in sorted(observations, key=lambda o: o.at):
            by_device[observation.device_id].append(observation)
        context = Context(generation=await self._states.generation())

        def change(states: dict) -> list[Transition]:
            return [t for device, items in by_device.items() for o in items
                    for t in self._engine.observe(states[device], o, context)]

        transitions = await self._states.change(by_device, change, self._engine.deadline)
        newest: dict[str, float] = {}
        for o in observations:
            group = clock_group(o.kind, o.feeder_id)
            newest[group] = max(newest.get(group, o.at), o.at)
        for group, at in newest.items():
            await self._states.advance_clock(group, at)
        return transitions

    async def sweep(self) -> list[Transition]:
        """Raise missing-data alerts of the devices silent past their deadline, on their group's clock."""
        due = await self._states.due()
        if not due:
            return []
        return await self._states.change(
            due, lambda states: [t for device, state in states.items() for t in self._engine.sweep(state, due[device])],
            self._engine.deadline,
        )


def observations_of(readings: Readings) -> list[Observation]:
    """The observations of an event's readings."""
    observe = from_sensor if readings.table is SENSOR_READINGS else from_meter
    return [observe(datum) for datum in readings.datums]
