"""Audit entries as CloudEvents `com.smartgrid.audit.recorded`, sent through the broker to the users service.

`AuditReporter.report` sends one entry and raises when the broker did not take it; `fire` sends in
the background for entries that must not hold up the answer (refused tokens), at most MAX_PENDING
at once: beyond that an entry is logged as not reported and counted on /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from prometheus_client import Counter

from shared.audit.chain import AuditEntry
from shared.cloudevents import CloudEvent, new_event
from shared.sink import EventSink

log = logging.getLogger("smartgrid.audit")

AUDIT_TYPE = "com.smartgrid.audit.recorded"
MAX_PENDING = 100
UNREPORTED = Counter("smartgrid_audit_unreported_total", "Audit entries not reported (too many pending or broker down)")


def audit_event(entry: AuditEntry, source: str) -> CloudEvent:
    """The event reporting `entry` (its detail values as text)."""
    at = entry.at or datetime.now(UTC)
    data = {"actor": entry.actor, "action": entry.action, "outcome": entry.outcome, "target": entry.target,
            "detail": {key: str(value) for key, value in entry.detail.items()},
            "at": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    return new_event(AUDIT_TYPE, source, str(uuid.uuid4()), data, partitionkey=entry.actor)


def entry_of(event: CloudEvent, datum: dict) -> AuditEntry:
    """The entry an audit event reports, given its checked data; deduplicated by source and id."""
    at = datum["at"]
    if isinstance(at, (int, float)):
        at = datetime.fromtimestamp(at / 1000, UTC)
    elif isinstance(at, str):
        at = datetime.fromisoformat(at)
    return AuditEntry(datum["actor"], datum["action"], datum["outcome"], event.source, datum.get("target"),
                      dict(datum.get("detail") or {}), at, f"{event.source}#{event.id}")


class AuditReporter:
    """Reports a function's audit entries to the broker."""

    def __init__(self, sink: EventSink, source: str) -> None:
        self._sink = sink
        self._source = source
        self._pending: set[asyncio.Task[None]] = set()

    async def report(self, entry: AuditEntry) -> None:
        """Send one entry; raises SinkUnavailable, SinkRejected or CircuitOpen."""
        await self._sink.send(audit_event(entry, self._source))

    def fire(self, entry: AuditEntry) -> None:
        """Send one entry in the background (bounded; see the module's docstring)."""
        if len(self._pending) >= MAX_PENDING:
            UNREPORTED.inc()
            log.warning("audit entry not reported (%d pending): %s", len(self._pending), entry)
            return
        task = asyncio.get_running_loop().create_task(self._send_logged(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_logged(self, entry: AuditEntry) -> None:
        try:
            await self.report(entry)
        except Exception as error:  # the broker's failure must not fail the request that was refused
            UNREPORTED.inc()
            log.warning("audit entry not reported: %s: %s", error, entry)
