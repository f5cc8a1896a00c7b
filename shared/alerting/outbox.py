"""The outbox of alert transitions: stored in PostgreSQL and published to the broker, then forgotten."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict

import psycopg

from shared.alerting.engine import Transition
from shared.alerting.events import alert_event
from shared.alerting.statestore import StateStore
from shared.alerting.store import AlertStore
from shared.resilience import Downstream
from shared.sink import EventSink
from shared.stores.postgres import is_transient

log = logging.getLogger("smartgrid.alerting")
LEASE_WAIT_S = 5.0
LEASE_POLL_S = 0.01
SENDS_IN_FLIGHT = 32


class Publisher:
    """Empties the outbox: each transition stored (once) and published (same event id on a retry)."""

    def __init__(self, states: StateStore, alerts: AlertStore, sink: EventSink, source: str, *,
                 database: Downstream) -> None:
        self._states = states
        self._alerts = alerts
        self._database = database
        self._sink = sink
        self._source = source

    async def close(self) -> None:
        """Close the broker's HTTP session."""
        await self._sink.close()

    async def publish(self) -> int:
        """Store and publish every pending transition, one replica at a time; returns how many this one did.

        A replica that finds another publishing waits for it (its own transitions may have come after
        the other read the outbox), up to LEASE_WAIT_S; what is left then goes with the next call.
        """
        if not await self._states.has_outbox():
            return 0  # the common case: one round trip, no lease
        token = uuid.uuid4().hex
        deadline = time.monotonic() + LEASE_WAIT_S
        while not await self._states.lease_publisher(token):
            if time.monotonic() > deadline:
                return 0
            await asyncio.sleep(LEASE_POLL_S)
        try:
            return await self._publish_pending()
        finally:
            await self._states.end_publisher_lease(token)

    async def _publish_pending(self) -> int:
        pending = await self._states.outbox()
        if not pending:
            return 0
        try:
            await self._database.call(lambda: self._alerts.record(pending), what=f"store {len(pending)} alert changes")
        except psycopg.Error as error:
            if is_transient(error):
                raise
            pending = await self._record_each(pending)
        await self._send(pending)
        await self._states.published(pending)
        return len(pending)

    async def _send(self, transitions: list[Transition]) -> None:
        """Publish the changes: each device's in order (a raise before its clear), devices side by side."""
        chains: dict[str, list[Transition]] = defaultdict(list)
        for transition in transitions:
            chains[transition.device_id].append(transition)
        slots = asyncio.Semaphore(SENDS_IN_FLIGHT)

        async def send_chain(chain: list[Transition]) -> None:
            async with slots:
                for transition in chain:
                    await self._sink.send(alert_event(transition, self._source))

        results = await asyncio.gather(*(send_chain(chain) for chain in chains.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _record_each(self, pending: list[Transition]) -> list[Transition]:
        """After the database refused a batch: store its changes one by one, and set aside (in the
        outbox's `rejected` hash, logged) those it refuses, so that one cannot block the others."""
        stored = []
        for transition in pending:
            try:
                await self._database.call(lambda: self._alerts.record([transition]), what="store an alert change")
            except psycopg.Error as error:
                if is_transient(error):
                    raise
                log.error("alert change %s refused by the database, set aside: %s", transition.event_id, error)
                await self._states.reject(transition, str(error))
            else:
                stored.append(transition)
        return stored
