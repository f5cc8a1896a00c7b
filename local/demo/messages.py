"""The messages of an interval: sensor readings as CloudEvents over HTTP (binary, structured or
batch mode), each request one sensor's and sent with its token, and gateway batches as Kafka records
(Confluent Avro or JSON)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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

BATCH_INTERVALS = 2  # a batch-mode sensor's reading is held back one interval at most: no missing data

AvroEncoder = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True)
class HttpRequest:
    """One POST to `ingest`: the sensor whose token it is sent with, its headers and body, the valid
    readings its events carry (in order), and the kind of bad input it is (None for a valid request)."""

    sender: str
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


class SensorRequests:
    """The sensors' requests, interval by interval (call in order): a binary or structured sensor posts
    each reading as it is taken; a batch-mode sensor holds its readings back and posts those of
    BATCH_INTERVALS consecutive intervals in one request (its own only: a request carries one device's
    events), what it holds at the period's end then."""

    def __init__(self, fleet: Fleet, intervals: int, span: int = BATCH_INTERVALS) -> None:
        self._modes = {sensor.device_id: sensor.mode for sensor in fleet.sensors}
        self._intervals = intervals
        self._span = span
        self._held: dict[str, list[dict[str, Any]]] = {}

    def of_interval(self, index: int, readings: Iterable[dict[str, Any]]) -> list[HttpRequest]:
        """The requests to send in interval `index`, of its readings (and the batch-mode ones held back)."""
        requests = []
        for reading in readings:
            device = reading["device_id"]
            if self._modes[device] == "batch":
                self._held.setdefault(device, []).append(reading)
            else:
                requests.append(single_request(reading, self._modes[device]))
        if (index + 1) % self._span == 0 or index + 1 >= self._intervals:
            requests += [batch_request(held) for held in self._held.values()]
            self._held.clear()
        return requests


def single_request(reading: dict[str, Any], mode: str) -> HttpRequest:
    """A sensor's reading as one event in binary or structured mode."""
    event = sensor_event(reading)
    if mode == "binary":
        headers, body = to_http_binary(event)
    elif mode == "structured":
        headers, body = {"content-type": STRUCTURED_CONTENT_TYPE}, orjson.dumps(to_structured(event))
    else:
        raise ValueError(f"expected mode binary or structured, found {mode!r}")
    return HttpRequest(reading["device_id"], headers, body, (reading,))


def batch_request(readings: Sequence[dict[str, Any]]) -> HttpRequest:
    """One sensor's readings, in order, as a request in batch mode."""
    senders = {reading["device_id"] for reading in readings}
    if len(senders) != 1:
        raise ValueError(f"expected the readings of one sensor, found those of {sorted(senders)}")
    body = orjson.dumps([to_structured(sensor_event(reading)) for reading in readings])
    return HttpRequest(senders.pop(), {"content-type": BATCH_CONTENT_TYPE}, body, tuple(readings))


def gateway_record(gateway: Gateway, batch: dict[str, Any], avro: AvroEncoder) -> GatewayRecord:
    """A gateway's batch as a Kafka record keyed by the gateway: Confluent Avro, or JSON for JSON gateways."""
    key = gateway.gateway_id.encode()
    readings = tuple(batch["readings"])
    if gateway.encoding == "json":
        return GatewayRecord(KafkaRecord(key, list(JSON_HEADERS), orjson.dumps(batch)), readings, "json")
    return GatewayRecord(KafkaRecord(key, [], avro(batch)), readings, "avro")
