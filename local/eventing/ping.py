"""PingSource: a CloudEvent sent to the sink at every tick of the schedule, as Knative does."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from local.eventing.manifests import PingSource
from shared.cloudevents import PING_EVENT_TYPE, SPEC_VERSION, CloudEvent, validate

log = logging.getLogger("smartgrid.eventing.ping")

Deliver = Callable[[CloudEvent], Awaitable[None]]


def ping_event(source: PingSource, tick: datetime) -> CloudEvent:
    """The `dev.knative.sources.ping` event of one tick: the source's data and content type."""
    attributes = {
        "specversion": SPEC_VERSION,
        "id": str(uuid.uuid4()),
        "source": f"/apis/v1/namespaces/{source.namespace}/pingsources/{source.name}",
        "type": PING_EVENT_TYPE,
        "time": tick.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if source.content_type:
        attributes["datacontenttype"] = source.content_type
    return validate(attributes, source.data)


class PingLoop:
    """Sends a PingSource's event at each tick, or every `interval_s` when one is given (tests)."""

    def __init__(self, source: PingSource, deliver: Deliver, interval_s: float | None = None) -> None:
        self.source = source
        self._deliver = deliver
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def tick(self, at: datetime | None = None) -> None:
        """Send the event of one tick now (`at` defaults to the current time)."""
        event = ping_event(self.source, at or datetime.now(UTC))
        log.info("ping source=%s/%s id=%s", self.source.namespace, self.source.name, event.id)
        await self._deliver(event)

    def start(self) -> None:
        """Run the schedule in the background until stop()."""
        self._task = asyncio.create_task(self._run(), name=f"pingsource/{self.source.namespace}/{self.source.name}")

    async def stop(self) -> None:
        """Cancel the schedule; a delivery in progress is abandoned."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = datetime.now(UTC)
            due = self.source.schedule.next_after(now) if self._interval_s is None else None
            await asyncio.sleep(self._interval_s if due is None else max(0.0, (due - now).total_seconds()))
            try:
                await self.tick(due)
            except Exception:  # one failed tick must not end the schedule
                log.exception("ping failed source=%s/%s", self.source.namespace, self.source.name)
