"""The messages of an interval: sensor readings as CloudEvents over HTTP (binary, structured or
batch mode) and gateway batches as Kafka records (Confluent Avro or JSON)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from local.demo.fleet import Fleet, Gateway
from shared.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    KafkaRecord,
    new_event,
    to_http_binary,
    to_structured,
)
from shared.readings.decoding import SENSOR_READING

JSON_HEADERS = (("content-type", b"application/json"),)

AvroEncoder = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True)
class HttpRequest:
    """One POST to `ingest`: its headers and body, the valid readings its events carry (in order),
    and the kind of malformed input it is (None for a valid request)."""

    headers: dict[str, str]
    body: bytes
    readings: tuple[dict[str, Any], ...]
    malformed: str | None = None

    @property
    def events(self) -> int:
        """How many events the request holds."""
        return max(1, len(self.readings))


@dataclass(frozen=True)
class GatewayRecord:
    """One Kafka record of a gateway: the readings it carries, and the kind of malformed input it is."""

    record: KafkaRecord
    readings: tuple[dict[str, Any], ...]
    encoding: str
    malformed: str | None = None


def sensor_event(reading: dict[str, Any]) -> CloudEvent:
    """The CloudEvent of one sensor reading; its id is stable: device and timestamp."""
    device = reading["device_id"]
    return new_event(SENSOR_READING, f"/devices/sensors/{device}", f"{device}@{reading['timestamp']}", reading)


def sensor_requests(fleet: Fleet, readings: Sequence[dict[str, Any]]) -> list[HttpRequest]:
    """The requests of one interval's sensor readings: one per binary or structured sensor, one batch per feeder."""
    sensors = {sensor.device_id: sensor for sensor in fleet.sensors}
    requests: list[HttpRequest] = []
    batches: dict[int, list[dict[str, Any]]] = {}
    for reading in readings:
        sensor = sensors[reading["device_id"]]
        if sensor.mode == "binary":
            headers, body = to_http_binary(sensor_event(reading))
            requests.append(HttpRequest(headers, body, (reading,)))
        elif sensor.mode == "structured":
            body = orjson.dumps(to_structured(sensor_event(reading)))
            requests.append(HttpRequest({"content-type": STRUCTURED_CONTENT_TYPE}, body, (reading,)))
        else:
            batches.setdefault(sensor.feeder, []).append(reading)
    for batch in batches.values():
        body = orjson.dumps([to_structured(sensor_event(reading)) for reading in batch])
        requests.append(HttpRequest({"content-type": BATCH_CONTENT_TYPE}, body, tuple(batch)))
    return requests


def gateway_record(gateway: Gateway, batch: dict[str, Any], avro: AvroEncoder) -> GatewayRecord:
    """A gateway's batch as a Kafka record keyed by the gateway: Confluent Avro, or JSON for JSON gateways."""
    key = gateway.gateway_id.encode()
    readings = tuple(batch["readings"])
    if gateway.encoding == "json":
        return GatewayRecord(KafkaRecord(key, list(JSON_HEADERS), orjson.dumps(batch)), readings, "json")
    return GatewayRecord(KafkaRecord(key, [], avro(batch)), readings, "avro")
