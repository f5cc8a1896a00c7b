"""KafkaSource record -> CloudEvent conversion of local/eventing/source.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
)

from local.eventing.manifests import Destination, KafkaSource
from local.eventing.source import KAFKA_EVENT_TYPE, record_to_event
from shared.cloudevents import CloudEvent, new_event, to_kafka

SOURCE = KafkaSource(
    namespace="grid",
    name="meters",
    topics=("readings",),
    sink=Destination(uri="http://sink.example/"),
    consumer_group="meters-cg",
)
TIMESTAMP_MS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z


@dataclass
class FakeMessage:
    """The part of confluent_kafka.Message that record_to_event reads."""

    _value: bytes | None = b'{"kw": 1.5}'
    _key: bytes | None = None
    _headers: list[tuple[str, bytes | None]] | None = None
    _topic: str = "readings"
    _partition: int = 3
    _offset: int = 42
    _timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, TIMESTAMP_MS)

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


def convert(message: FakeMessage, source: KafkaSource = SOURCE) -> CloudEvent:
    return record_to_event(source, message)  # type: ignore[arg-type]


def with_overrides(**extensions: str) -> KafkaSource:
    return KafkaSource(
        namespace=SOURCE.namespace,
        name=SOURCE.name,
        topics=SOURCE.topics,
        sink=SOURCE.sink,
        consumer_group=SOURCE.consumer_group,
        ce_overrides=extensions,
    )


def test_plain_record_becomes_a_kafka_event() -> None:
    message = FakeMessage(
        _key=b"meter-7",
        _headers=[("content-type", b"application/json"), ("X-Trace-Id", b"abc")],
    )
    event = convert(message)
    assert event.attributes == {
        "specversion": "1.0",
        "id": "partition:3/offset:42",
        "source": "/apis/v1/namespaces/grid/kafkasources/meters#readings",
        "type": KAFKA_EVENT_TYPE,
        "subject": "partition:3#42",
        "time": "2023-11-14T22:13:20.123000Z",
        "key": "meter-7",
        "datacontenttype": "application/json",
        "kafkaheaderxtraceid": "abc",
    }
    assert event.type == "dev.knative.kafka.event"
    assert event.data == b'{"kw": 1.5}'
    assert event.json() == {"kw": 1.5}


@pytest.mark.parametrize(
    ("topic", "partition", "offset", "expected"),
    [
        ("readings", 0, 0, {"id": "partition:0/offset:0", "subject": "partition:0#0"}),
        ("alerts", 11, 123456789, {"id": "partition:11/offset:123456789", "subject": "partition:11#123456789"}),
    ],
)
def test_identity_attributes(topic: str, partition: int, offset: int, expected: dict[str, str]) -> None:
    event = convert(FakeMessage(_topic=topic, _partition=partition, _offset=offset))
    assert {name: event.attributes[name] for name in expected} == expected
    assert event.source == f"/apis/v1/namespaces/grid/kafkasources/meters#{topic}"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param((TIMESTAMP_CREATE_TIME, TIMESTAMP_MS), datetime(2023, 11, 14, 22, 13, 20, 123000, UTC), id="ms"),
        pytest.param((TIMESTAMP_LOG_APPEND_TIME, 0), datetime(1970, 1, 1, tzinfo=UTC), id="log-append-epoch"),
        pytest.param((TIMESTAMP_CREATE_TIME, 1700000000000), datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), id="sec"),
    ],
)
def test_time_is_the_record_timestamp_in_rfc3339(timestamp: tuple[int, int], expected: datetime) -> None:
    time = convert(FakeMessage(_timestamp=timestamp)).attributes["time"]
    assert time.endswith("Z")
    assert "+" not in time
    assert datetime.fromisoformat(time) == expected


def test_no_timestamp_no_time() -> None:
    event = convert(FakeMessage(_timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)))
    assert "time" not in event.attributes


@pytest.mark.parametrize(
    ("key", "attributes"),
    [
        pytest.param(None, {}, id="no-key"),
        pytest.param(b"meter-7", {"key": "meter-7"}, id="text"),
        pytest.param("zähler".encode(), {"key": "zähler"}, id="utf-8"),
    ],
)
def test_key_extension(key: bytes | None, attributes: dict[str, str]) -> None:
    event = convert(FakeMessage(_key=key))
    assert {name: value for name, value in event.attributes.items() if name == "key"} == attributes


@pytest.mark.parametrize(
    ("header", "value", "attribute", "text"),
    [
        pytest.param("region", b"north", "kafkaheaderregion", "north", id="plain"),
        pytest.param("X-Trace-Id", b"abc", "kafkaheaderxtraceid", "abc", id="case-and-dashes"),
        pytest.param("my_header.v2", b"x", "kafkaheadermyheaderv2", "x", id="underscore-dot"),
        pytest.param("ÄBC", b"x", "kafkaheaderbc", "x", id="non-ascii-dropped"),
        pytest.param("empty", None, "kafkaheaderempty", "", id="null-value"),
        pytest.param("content-type", b"text/plain", "datacontenttype", "text/plain", id="content-type"),
        pytest.param("Content-Type", b"text/csv", "datacontenttype", "text/csv", id="content-type-case"),
    ],
)
def test_headers_become_extensions(header: str, value: bytes | None, attribute: str, text: str) -> None:
    event = convert(FakeMessage(_headers=[(header, value)]))
    assert event.attributes[attribute] == text
    assert not any(name == "kafkaheadercontenttype" for name in event.attributes)


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        pytest.param(None, b"raw", id="headers-none"),
        pytest.param([], b"raw", id="headers-empty"),
        pytest.param(None, None, id="tombstone"),
    ],
)
def test_record_without_headers(headers: list[tuple[str, bytes | None]] | None, value: bytes | None) -> None:
    event = convert(FakeMessage(_headers=headers, _value=value))
    assert event.data == value
    assert "datacontenttype" not in event.attributes
    assert not any(name.startswith("kafkaheader") for name in event.attributes)


def binary_mode_message(event: CloudEvent, **fields: Any) -> FakeMessage:
    """A record written in CloudEvents Kafka binary mode."""
    record = to_kafka(event)
    return FakeMessage(_value=record.value, _key=record.key, _headers=record.headers, **fields)


PASS_THROUGH_EVENTS = [
    pytest.param(new_event("smartgrid.reading", "/meters/42", "r-1", {"kw": 2}), id="json"),
    pytest.param(new_event("smartgrid.reading", "/meters/7", "r-2", partitionkey="meter-7"), id="partitionkey-no-data"),
]


@pytest.mark.parametrize("event", PASS_THROUGH_EVENTS)
def test_binary_mode_record_passes_through_unchanged(event: CloudEvent) -> None:
    assert convert(binary_mode_message(event, _partition=5, _offset=9)) == event


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(FakeMessage(_headers=[("region", b"north")]), id="plain-record"),
        pytest.param(binary_mode_message(new_event("smartgrid.reading", "/meters/42", "r-1")), id="binary-mode"),
    ],
)
def test_ce_overrides_are_applied(message: FakeMessage) -> None:
    plain = convert(message)
    event = convert(message, with_overrides(team="grid", env="test"))
    assert event.attributes == {**plain.attributes, "team": "grid", "env": "test"}
    assert event.data == plain.data


def test_ce_overrides_replace_existing_extensions() -> None:
    event = convert(FakeMessage(_key=b"meter-7"), with_overrides(key="fixed"))
    assert event.attributes["key"] == "fixed"
