"""Reading events decoded and checked against the catalogue: the readings they carry and their table.

Accepted events: `com.smartgrid.sensor.reading`, `com.smartgrid.meter.reading`,
`com.smartgrid.meter.readings.batch` (from the broker) and `dev.knative.kafka.event`
(records of the gateway topics via a KafkaSource: Confluent Avro or JSON). `read` also checks a
gateway record's devices against the registry (shared/readings/senders.py) when given a check: a device
sending over HTTP was checked by `ingest` already, a record on Kafka was not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.cloudevents import CloudEvent
from shared.readings.store import METER_READINGS, SENSOR_READINGS, Table
from shared.validation.catalogue import Catalogue, EventSchema, UnknownEventType
from shared.validation.registry import GATEWAY_TOPICS
from shared.validation.validators import InvalidData
from shared.validation.wire import decode, is_confluent_avro

SENSOR_READING = "com.smartgrid.sensor.reading"
METER_READING = "com.smartgrid.meter.reading"
METER_BATCH = "com.smartgrid.meter.readings.batch"
KAFKA_RECORD = "dev.knative.kafka.event"

SchemaResolver = Callable[[int], EventSchema]
RecordCheck = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Readings:
    """The readings of one event, checked and normalised, with the table they belong to."""

    table: Table
    datums: list[dict[str, Any]]


class ReadingDecoder:
    """Decodes reading events: JSON data or Kafka records (Avro resolved by schema id, or JSON)."""

    def __init__(self, catalogue: Catalogue, resolve_schema: SchemaResolver,
                 check_record: RecordCheck | None = None) -> None:
        self._catalogue = catalogue
        self._resolve_schema = resolve_schema
        self._check_record = check_record

    async def read(self, event: CloudEvent) -> Readings:
        """The readings an event carries, a Kafka record's devices checked; raises InvalidData or UnknownEventType."""
        if event.type != KAFKA_RECORD or self._check_record is None:
            return self.decode(event)
        type_, datum = self._decode_record(event)
        if type_ in (SENSOR_READING, METER_READING, METER_BATCH):
            await self._check_record(type_, datum)
        return _readings(type_, datum)

    def decode(self, event: CloudEvent) -> Readings:
        """The readings an event carries, unchecked; raises InvalidData or UnknownEventType."""
        if event.type == KAFKA_RECORD:
            type_, datum = self._decode_record(event)
        else:
            type_, datum = event.type, self._catalogue.validate(event.type, event.json())
        return _readings(type_, datum)

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


def _readings(type_: str, datum: dict[str, Any]) -> Readings:
    if type_ == SENSOR_READING:
        return Readings(SENSOR_READINGS, [datum])
    if type_ == METER_READING:
        return Readings(METER_READINGS, [datum])
    if type_ == METER_BATCH:
        return Readings(METER_READINGS, datum["readings"])
    raise UnknownEventType(type_)
