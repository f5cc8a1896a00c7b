"""Injected bad input: malformed requests `ingest` must answer 400 and forbidden ones (a sensor posting
another sensor's reading) 403, though sent with a sensor's valid token; and gateway records `process`
must refuse (so the KafkaSource dead-letters them). Chosen from the seed, about 1 % of the messages."""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import orjson

from local.demo.fleet import rfc3339
from local.demo.messages import (
    JSON_HEADERS,
    AvroEncoder,
    GatewayRecord,
    HttpRequest,
    sensor_event,
)
from shared.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    KafkaRecord,
    new_event,
    to_http_binary,
    to_structured,
)
from shared.readings.decoding import SENSOR_READING

OTHER_DEVICE = "other-device"  # a sensor posting another sensor's (genuine) reading
MALFORMED_KINDS = (
    "invalid-json", "unknown-type", "missing-field", "wrong-type", "timestamp-in-future", "timestamp-too-old",
)
HTTP_KINDS = (*MALFORMED_KINDS, OTHER_DEVICE)
# the status `ingest` must refuse each kind with: a valid token does not make bad input acceptable
REFUSAL_STATUS: Mapping[str, int] = MappingProxyType({**dict.fromkeys(MALFORMED_KINDS, 400), OTHER_DEVICE: 403})
RECORD_KINDS = ("avro-truncated", "avro-unknown-schema-id", "json-invalid")
RATE = 0.01
UNKNOWN_SCHEMA_ID = 0  # catalogue ids are 31 bits of a SHA-256: never 0 in practice
BEFORE_EARLIEST = datetime(1999, 12, 31, 23, 45, tzinfo=UTC)  # the catalogue takes times from 2000 on
FAR_AHEAD = timedelta(days=36525)  # a clock a century ahead: in the future whatever the simulated day
Plan = dict[int, list[tuple[str, int]]]


def plan_malformed(kinds: Sequence[str], senders: int, intervals: int, seed: int, salt: str) -> Plan:
    """Interval -> [(kind, sender index)]: about RATE of senders x intervals, each kind at least once."""
    rng = random.Random(f"{seed}/malformed/{salt}")
    count = max(len(kinds), round(RATE * senders * intervals))
    order = list(kinds)
    rng.shuffle(order)
    plan: Plan = {}
    for number in range(count):
        plan.setdefault(rng.randrange(intervals), []).append((order[number % len(order)], rng.randrange(senders)))
    return plan


def http_kinds(sensors: int) -> tuple[str, ...]:
    """The kinds of bad requests a fleet of `sensors` sensors sends: another sensor's reading needs two."""
    return HTTP_KINDS if sensors > 1 else MALFORMED_KINDS


def malformed_request(kind: str, reading: dict[str, Any], event_id: str, *, sender: str | None = None) -> HttpRequest:
    """A request that breaks one rule of `kind`, made from a sensor's genuine reading and sent with the
    token of `sender`: the reading's sensor, or (OTHER_DEVICE only, and then required) another one."""
    owner = reading["device_id"]
    sender = sender or owner
    if (kind == OTHER_DEVICE) != (sender != owner):
        wanted = "another sensor than" if kind == OTHER_DEVICE else "the reading's sensor"
        raise ValueError(f"expected {wanted} {owner!r} as the sender of a {kind} request, found {sender!r}")
    source = f"/devices/sensors/{owner}"
    if kind == "invalid-json":
        document = orjson.dumps(to_structured(sensor_event(reading)))
        return HttpRequest(sender, {"content-type": STRUCTURED_CONTENT_TYPE}, document[: len(document) // 2], (),
                           kind)
    if kind == OTHER_DEVICE:
        event = new_event(SENSOR_READING, source, event_id, reading)
    elif kind == "unknown-type":
        event = new_event("com.smartgrid.sensor.measurement", source, event_id, reading)
    elif kind == "missing-field":
        event = new_event(SENSOR_READING, source, event_id, {k: v for k, v in reading.items() if k != "feeder_id"})
    elif kind == "wrong-type":
        wrong = {**reading, "frequency_hz": f"{reading['frequency_hz']} Hz"}
        event = new_event(SENSOR_READING, source, event_id, wrong)
    elif kind in ("timestamp-in-future", "timestamp-too-old"):
        moment = datetime.fromisoformat(reading["timestamp"])
        wrong = moment + FAR_AHEAD if kind == "timestamp-in-future" else BEFORE_EARLIEST
        event = new_event(SENSOR_READING, source, event_id, {**reading, "timestamp": rfc3339(wrong)})
    else:
        raise ValueError(f"expected one of {', '.join(HTTP_KINDS)}, found {kind!r}")
    headers, body = to_http_binary(event)
    return HttpRequest(sender, headers, body, (), kind)


def malformed_record(kind: str, gateway_id: str, batch: dict[str, Any], avro: AvroEncoder) -> GatewayRecord:
    """A gateway record `process` cannot read, made from (the first readings of) a genuine batch."""
    small = {**batch, "readings": batch["readings"][:3]}
    key = gateway_id.encode()
    if kind == "avro-truncated":
        encoded = avro(small)
        record = KafkaRecord(key, [], encoded[: len(encoded) // 2])
    elif kind == "avro-unknown-schema-id":
        encoded = avro(small)
        record = KafkaRecord(key, [], struct.pack(">bi", 0, UNKNOWN_SCHEMA_ID) + encoded[5:])
    elif kind == "json-invalid":
        encoded = orjson.dumps(small)
        record = KafkaRecord(key, list(JSON_HEADERS), encoded[: len(encoded) // 2])
    else:
        raise ValueError(f"expected one of {', '.join(RECORD_KINDS)}, found {kind!r}")
    return GatewayRecord(record, (), "json" if kind.startswith("json") else "avro", kind)
