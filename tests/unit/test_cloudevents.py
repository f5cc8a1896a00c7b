"""CloudEvents 1.0 HTTP (binary, structured, batch) and Kafka bindings of shared/cloudevents.py."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from shared.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    InvalidEvent,
    from_http,
    from_http_batch,
    from_kafka,
    from_structured,
    is_batch,
    new_event,
    to_http_binary,
    to_kafka,
    to_structured,
)

REQUIRED = {"specversion": "1.0", "id": "reading-1", "source": "/meters/42", "type": "smartgrid.reading"}
STRUCTURED_HEADERS = {"content-type": STRUCTURED_CONTENT_TYPE}


def binary_headers(**attributes: str | None) -> dict[str, str]:
    """`ce-*` headers of the required attributes, updated with `attributes` (None drops one)."""
    merged = {**REQUIRED, **attributes}
    return {f"ce-{name}": value for name, value in merged.items() if value is not None}


def structured_body(**fields: Any) -> bytes:
    """A structured-mode body of the required attributes, updated with `fields` (None drops one)."""
    merged = {**REQUIRED, **fields}
    return orjson.dumps({name: value for name, value in merged.items() if value is not None})


def parse_error(headers: Mapping[str, str], body: bytes) -> InvalidEvent:
    """The InvalidEvent from_http raises for this message."""
    with pytest.raises(InvalidEvent) as caught:
        from_http(headers, body)
    return caught.value


# --- binary mode ----------------------------------------------------------------------


@pytest.mark.parametrize("spell", [str.lower, str.title, str.upper], ids=["lower", "title", "upper"])
def test_binary_ce_header_names_are_case_insensitive(spell: Callable[[str], str]) -> None:
    headers = {spell(name): value for name, value in binary_headers(region="north").items()}
    event = from_http(headers, b"")
    assert event.attributes == {**REQUIRED, "region": "north"}
    assert event.data is None


@pytest.mark.parametrize(
    ("name", "case_insensitive_mapping"),
    [
        pytest.param("content-type", False, id="lower"),
        pytest.param("Content-Type", False, id="canonical"),
        pytest.param("CONTENT-TYPE", True, id="upper-aiohttp-headers"),
        pytest.param("CONTENT-TYPE", False, id="upper-plain-dict"),
        pytest.param("Content-type", False, id="mixed-plain-dict"),
    ],
)
def test_binary_content_type_becomes_datacontenttype(name: str, case_insensitive_mapping: bool) -> None:
    headers = {name: "application/json", **binary_headers()}
    event = from_http(CIMultiDict(headers) if case_insensitive_mapping else headers, b'{"kw": 1.5}')
    assert event.datacontenttype == "application/json"
    assert event.data == b'{"kw": 1.5}'
    assert event.json() == {"kw": 1.5}


def test_binary_without_content_type_or_body() -> None:
    event = from_http(binary_headers(), b"")
    assert "datacontenttype" not in event.attributes
    assert event.data is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("plain", "plain"),
        ("hello%20world", "hello world"),
        ("caf%C3%A9", "café"),
        ("100%25", "100%"),
        ("%22quoted%22", '"quoted"'),
    ],
)
def test_binary_header_values_are_percent_decoded(header: str, expected: str) -> None:
    event = from_http(binary_headers(subject=header), b"")
    assert event.attributes["subject"] == expected


# --- structured mode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "data", "datacontenttype"),
    [
        pytest.param({"data": {"kw": 1.5}}, b'{"kw":1.5}', "application/json", id="json-object-implies-json"),
        pytest.param({"data": [1, 2]}, b"[1,2]", "application/json", id="json-array"),
        pytest.param({"data": "hello"}, b'"hello"', "application/json", id="string-as-json"),
        pytest.param(
            {"data": "hello", "datacontenttype": "application/json"}, b'"hello"', "application/json", id="json-string"
        ),
        pytest.param({"data": "hello", "datacontenttype": "text/plain"}, b"hello", "text/plain", id="text"),
        pytest.param(
            {"datacontenttype": "application/vnd.grid+json", "data": {"a": 1}},
            b'{"a":1}',
            "application/vnd.grid+json",
            id="suffix-json",
        ),
        pytest.param(
            {"data_base64": base64.b64encode(b"\x00\xff").decode(), "datacontenttype": "application/octet-stream"},
            b"\x00\xff",
            "application/octet-stream",
            id="base64",
        ),
        pytest.param({"data_base64": base64.b64encode(b"raw").decode()}, b"raw", None, id="base64-no-type"),
        pytest.param({}, None, None, id="no-data"),
    ],
)
def test_structured_data(fields: dict[str, Any], data: bytes | None, datacontenttype: str | None) -> None:
    event = from_http({"Content-Type": STRUCTURED_CONTENT_TYPE + "; charset=utf-8"}, structured_body(**fields))
    assert event.data == data
    assert event.datacontenttype == datacontenttype


@pytest.mark.parametrize(
    ("value", "text"),
    [("north", "north"), (3, "3"), (0, "0"), (-7, "-7"), (True, "true"), (False, "false")],
)
def test_structured_extension_values_become_strings(value: Any, text: str) -> None:
    event = from_structured({**REQUIRED, "ext": value})
    assert event.attributes["ext"] == text


# --- invalid events -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["id", "source", "type", "specversion"])
@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("absent", [None, ""], ids=["missing", "empty"])
def test_required_attribute_missing_or_empty(missing: str, mode: str, absent: str | None) -> None:
    if mode == "binary":
        error = parse_error(binary_headers(**{missing: absent}), b"")
    else:
        error = parse_error(STRUCTURED_HEADERS, structured_body(**{missing: absent}))
    assert error.field == missing
    assert error.index is None


BAD_MESSAGES: list[Any] = [
    pytest.param(binary_headers(specversion="0.3"), b"", "specversion", id="binary-specversion-0.3"),
    pytest.param(STRUCTURED_HEADERS, structured_body(specversion="0.3"), "specversion", id="structured-specversion"),
    pytest.param(binary_headers(time="yesterday"), b"", "time", id="time-words"),
    pytest.param(binary_headers(time="2024-13-01T00:00:00Z"), b"", "time", id="time-month-13"),
    pytest.param(STRUCTURED_HEADERS, structured_body(time="soon"), "time", id="structured-time"),
    pytest.param(STRUCTURED_HEADERS, b"{not json", "body", id="invalid-json"),
    pytest.param(STRUCTURED_HEADERS, b"", "body", id="empty-body"),
    pytest.param(STRUCTURED_HEADERS, b"[]", "body", id="json-array"),
    pytest.param(STRUCTURED_HEADERS, b'"event"', "body", id="json-string"),
    pytest.param(STRUCTURED_HEADERS, b"42", "body", id="json-number"),
    pytest.param(STRUCTURED_HEADERS, structured_body(myExt="x"), "myExt", id="name-upper-case"),
    pytest.param(STRUCTURED_HEADERS, structured_body(**{"my-ext": "x"}), "my-ext", id="name-dash"),
    pytest.param(STRUCTURED_HEADERS, structured_body(**{"my_ext": "x"}), "my_ext", id="name-underscore"),
    pytest.param(STRUCTURED_HEADERS, structured_body(**{"": "x"}), "", id="name-empty"),
    pytest.param(STRUCTURED_HEADERS, structured_body(ext=1.5), "ext", id="value-float"),
    pytest.param(STRUCTURED_HEADERS, structured_body(ext=[1]), "ext", id="value-list"),
    pytest.param(STRUCTURED_HEADERS, structured_body(data_base64="not base64!"), "data_base64", id="bad-base64"),
    pytest.param({"content-type": BATCH_CONTENT_TYPE}, b"[]", "content-type", id="batch-to-from_http"),
    pytest.param({"content-type": "application/json"}, b"{}", "specversion", id="no-ce-headers"),
    pytest.param({}, b"", "specversion", id="nothing"),
]


@pytest.mark.parametrize(("headers", "body", "field"), BAD_MESSAGES)
def test_invalid_event_names_the_field(headers: Mapping[str, str], body: bytes, field: str) -> None:
    error = parse_error(headers, body)
    assert error.field == field
    assert str(error).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "time",
    ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00.123456789Z", "2024-01-01T12:00:00+02:00", "1985-04-12T23:20:50.52Z"],
)
def test_rfc3339_times_are_accepted(time: str) -> None:
    assert from_http(binary_headers(time=time), b"").attributes["time"] == time


@pytest.mark.parametrize("time", ["2024-01-01", "2024-01-01T10:00:00", "20240101T100000Z"])
def test_non_rfc3339_times_are_rejected(time: str) -> None:
    assert parse_error(binary_headers(time=time), b"").field == "time"


def test_structured_accepts_attribute_names_longer_than_20_characters() -> None:
    event = from_structured({**REQUIRED, "kafkaheadertraceparent": "00-abc"})
    assert event.attributes["kafkaheadertraceparent"] == "00-abc"


def test_invalid_event_to_dict() -> None:
    assert InvalidEvent("id", "required").to_dict() == {
        "error": "invalid CloudEvent",
        "field": "id",
        "message": "required",
    }
    assert InvalidEvent("type", "required", index=2).to_dict() == {
        "error": "invalid CloudEvent",
        "field": "type",
        "message": "required",
        "index": 2,
    }


# --- batch mode -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (BATCH_CONTENT_TYPE, True),
        (BATCH_CONTENT_TYPE + "; charset=utf-8", True),
        (STRUCTURED_CONTENT_TYPE, False),
        ("", False),
    ],
)
def test_is_batch(content_type: str, expected: bool) -> None:
    assert is_batch({"content-type": content_type}) is expected


def test_batch_reports_each_bad_entry_with_its_index() -> None:
    entries = [
        {**REQUIRED, "id": "a"},
        {**REQUIRED, "id": ""},
        "not an event",
        {**REQUIRED, "Bad": "x"},
        {**REQUIRED, "id": "e", "data": {"kw": 2}},
    ]
    parsed = from_http_batch(orjson.dumps(entries))
    assert [(type(item).__name__, getattr(item, "index", None)) for item in parsed] == [
        ("CloudEvent", None),
        ("InvalidEvent", 1),
        ("InvalidEvent", 2),
        ("InvalidEvent", 3),
        ("CloudEvent", None),
    ]
    errors = [item for item in parsed if isinstance(item, InvalidEvent)]
    assert [(error.field, error.to_dict()["index"]) for error in errors] == [("id", 1), ("event", 2), ("Bad", 3)]
    assert [item.id for item in parsed if isinstance(item, CloudEvent)] == ["a", "e"]


def test_empty_batch() -> None:
    assert from_http_batch(b"[]") == []


@pytest.mark.parametrize("body", [b"[not json", b"{}", b'"x"', b""])
def test_batch_body_that_is_not_an_array(body: bytes) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_http_batch(body)
    assert caught.value.field == "body"
    assert caught.value.index is None


# --- round trips ----------------------------------------------------------------------

ROUND_TRIP_EVENTS = [
    pytest.param(new_event("smartgrid.reading", "/meters/42", "r-1", {"kw": 1.5, "ok": True}), id="json"),
    pytest.param(new_event("smartgrid.tick", "/clock", "t-1"), id="no-data"),
    pytest.param(
        CloudEvent(
            {**REQUIRED, "datacontenttype": "text/plain; charset=utf-8", "subject": 'Zähler "Nord" 100% ok'},
            "grüß dich".encode(),
        ),
        id="text-unicode-attribute",
    ),
    pytest.param(
        CloudEvent({**REQUIRED, "datacontenttype": "application/octet-stream"}, bytes(range(256))),
        id="binary-data",
    ),
    pytest.param(
        new_event("smartgrid.reading", "/meters/7", "r-2", [1, 2], partitionkey="meter-7", region="north"),
        id="extensions-partitionkey",
    ),
]


@pytest.mark.parametrize("event", ROUND_TRIP_EVENTS)
def test_http_binary_round_trip(event: CloudEvent) -> None:
    headers, body = to_http_binary(event)
    assert all(value.isascii() and " " not in value for name, value in headers.items() if name.startswith("ce-"))
    assert from_http(headers, body) == event


@pytest.mark.parametrize("event", ROUND_TRIP_EVENTS)
def test_structured_round_trip(event: CloudEvent) -> None:
    document = orjson.loads(orjson.dumps(to_structured(event)))
    assert from_structured(document) == event
    assert from_http(STRUCTURED_HEADERS, orjson.dumps(to_structured(event))) == event


@pytest.mark.parametrize(
    ("event", "key"),
    [
        pytest.param(new_event("t", "/s", "1", {"a": 1}), None, id="no-key"),
        pytest.param(new_event("t", "/s", "1", {"a": 1}, partitionkey="meter-7"), b"meter-7", id="partitionkey"),
        pytest.param(CloudEvent({**REQUIRED, "subject": "100% é"}), None, id="unicode-no-data"),
    ],
)
def test_kafka_round_trip(event: CloudEvent, key: bytes | None) -> None:
    record = to_kafka(event)
    assert record.key == key
    assert record.value == event.data
    header_names = [name for name, _ in record.headers]
    assert all(name.startswith("ce_") or name == "content-type" for name in header_names)
    assert ("content-type" in header_names) == (event.datacontenttype is not None)
    assert from_kafka(record.headers, record.value) == event


def test_from_kafka_structured_mode() -> None:
    event = new_event("t", "/s", "1", {"a": 1})
    headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
    assert from_kafka(headers, orjson.dumps(to_structured(event))) == event


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="none"),
        pytest.param([], id="empty"),
        pytest.param([("content-type", b"application/json"), ("traceparent", b"00-abc")], id="plain-headers"),
    ],
)
def test_from_kafka_without_ce_headers_is_none(headers: list[tuple[str, bytes | None]] | None) -> None:
    assert from_kafka(headers, b'{"kw": 1}') is None
