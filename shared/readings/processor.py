"""Processing of reading events: decode and check, store each reading exactly once.

The alert rules run elsewhere, in `detect` (shared/alerting), on the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.cloudevents import CloudEvent
from shared.readings.decoding import ReadingDecoder, Readings
from shared.readings.rows import Row, meter_row, sensor_row
from shared.readings.store import SENSOR_READINGS, ReadingStore, StoreResult
from shared.resilience import Downstream


class ReadingProcessor:
    """Stores the readings of an event exactly once.

    `database` is the downstream of the store's database: its writes are retried and guarded by its breaker.
    """

    def __init__(self, decoder: ReadingDecoder, store: ReadingStore, *, database: Downstream) -> None:
        self._decoder = decoder
        self._store = store
        self._database = database

    async def process(self, event: CloudEvent) -> dict[str, Any]:
        """Process one event; raises InvalidData/UnknownEventType (permanent), store errors or CircuitOpen."""
        readings = await self._decoder.read(event)
        rows = list(_rows(readings, event.id))
        result: StoreResult = await self._database.call(
            lambda: self._store.write(readings.table, rows), what=f"store {len(rows)} readings"
        )
        return {"stored": result.inserted, "duplicates": result.duplicates}


def _rows(readings: Readings, event_id: str) -> Iterator[Row]:
    to_row = sensor_row if readings.table is SENSOR_READINGS else meter_row
    return (to_row(datum, event_id) for datum in readings.datums)
