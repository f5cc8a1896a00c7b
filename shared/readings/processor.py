"""Processing of reading events: decode and check, store once, evaluate rules, emit alerts.

Accepted events: `com.smartgrid.sensor.reading`, `com.smartgrid.meter.reading`,
`com.smartgrid.meter.readings.batch` (from the broker) and `dev.knative.kafka.event`
(records of the gateway topics via a KafkaSource: Confluent Avro or JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.cloudevents import CloudEvent, new_event
from shared.readings.rows import Row, meter_row, sensor_row
from shared.readings.rules import Violation, meter_violations, sensor_violations
from shared.readings.store import (
    METER_READINGS,
    SENSOR_READINGS,
    ReadingStore,
    StoreResult,
    Table,
)
from shared.resilience import retry_transient
from shared.sink import EventSink
from shared.stores.postgres import is_transient
from shared.validation.catalogue import Catalogue, EventSchema, UnknownEventType
from shared.validation.registry import GATEWAY_TOPICS
from shared.validation.validators import InvalidData
from shared.validation.wire import decode, is_confluent_avro

SENSOR_READING = "com.smartgrid.sensor.reading"
METER_READING = "com.smartgrid.meter.reading"
METER_BATCH = "com.smartgrid.meter.readings.batch"
KAFKA_RECORD = "dev.knative.kafka.event"
ALERT_RAISED = "com.smartgrid.alert.raised"
ALERT_SOURCE = "/smartgrid/functions/process"

SchemaResolver = Callable[[int], EventSchema]


@dataclass(frozen=True)
class Readings:
    """The readings of one event, checked and normalised, with the table they belong to."""

    table: Table
    datums: list[dict[str, Any]]


class ReadingProcessor:
    """Stores the readings of an event exactly once and emits an alert per broken rule."""

    def __init__(
        self, catalogue: Catalogue, store: ReadingStore, alerts: EventSink, resolve_schema: SchemaResolver
    ) -> None:
        self._catalogue = catalogue
        self._store = store
        self._alerts = alerts
        self._resolve_schema = resolve_schema

    async def process(self, event: CloudEvent) -> dict[str, Any]:
        """Process one event; raises InvalidData/UnknownEventType (permanent) or store/sink errors."""
        readings = self.decode(event)
        rows = list(_rows(readings, event.id))
        result: StoreResult = await retry_transient(
            lambda: self._store.write(readings.table, rows), is_transient, what=f"store {len(rows)} readings"
        )
        violations = list(_violations(readings))
        await self._alerts.send_all(alert_event(v) for v in violations)
        return {"stored": result.inserted, "duplicates": result.duplicates, "alerts": len(violations)}

    def decode(self, event: CloudEvent) -> Readings:
        """The readings an event carries, checked against the catalogue."""
        if event.type == KAFKA_RECORD:
            type_, datum = self._decode_record(event)
        else:
            type_, datum = event.type, self._catalogue.validate(event.type, event.json())
        if type_ == SENSOR_READING:
            return Readings(SENSOR_READINGS, [datum])
        if type_ == METER_READING:
            return Readings(METER_READINGS, [datum])
        if type_ == METER_BATCH:
            return Readings(METER_READINGS, datum["readings"])
        raise UnknownEventType(type_)

    def _decode_record(self, event: CloudEvent) -> tuple[str, dict[str, Any]]:
        payload = event.data or b""
        if is_confluent_avro(payload):
            schema, datum = decode(payload, self._resolve_schema)
            return schema.type, datum
        topic = event.source.rpartition("#")[2]
        type_ = GATEWAY_TOPICS.get(topic)
        if type_ is None:
            raise InvalidData("", f"expected a record of a gateway topic ({', '.join(GATEWAY_TOPICS)}), "
                                  f"found one of topic '{topic}'")
        return type_, self._catalogue.validate(type_, event.json())


def alert_event(violation: Violation) -> CloudEvent:
    """The `com.smartgrid.alert.raised` event of a violation; its id is stable across redeliveries."""
    epoch_ms = int(violation.timestamp.timestamp() * 1000)
    data = {
        "alert_id": violation.alert_id, "rule_id": violation.rule_id, "severity": violation.severity,
        "device_id": violation.device_id, "feeder_id": violation.feeder_id, "timestamp": epoch_ms,
        "value": violation.value, "threshold": violation.threshold, "message": violation.message,
    }
    return new_event(ALERT_RAISED, ALERT_SOURCE, f"{violation.alert_id}:{epoch_ms}", data,
                     partitionkey=violation.device_id)


def _rows(readings: Readings, event_id: str) -> Iterator[Row]:
    to_row = sensor_row if readings.table is SENSOR_READINGS else meter_row
    return (to_row(datum, event_id) for datum in readings.datums)


def _violations(readings: Readings) -> Iterable[Violation]:
    rules: Callable[[Mapping[str, Any]], Iterator[Violation]] = (
        sensor_violations if readings.table is SENSOR_READINGS else meter_violations
    )
    for datum in readings.datums:
        yield from rules(datum)
