"""The Confluent wire format: framing, round trips, and the catalogue's rules after decoding."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from fastavro import schemaless_writer

from shared.validation.catalogue import Catalogue, EventSchema, InvalidData
from shared.validation.wire import decode, encode, is_confluent_avro

EVENTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
READING = {
    "meter_id": "MTR-1",
    "site_id": "SITE-1",
    "timestamp": "2024-05-01T12:00:00.250Z",
    "registers": {"1.8.0": 100.5, "32.7.0": 230},
}
SENSOR = {
    "device_id": "TX-9",
    "feeder_id": "F-1",
    "timestamp": 1714564800000,
    "location": {"lat": 52.1, "lon": 5.1},
    "voltage_v": {"l1": 231.0},
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(EVENTS_DIR, max_future_seconds=300)


def frame(schema: EventSchema, datum: dict[str, object]) -> bytes:
    """Confluent framing around a datum fastavro accepts, bypassing the catalogue's rules."""
    buffer = BytesIO()
    buffer.write(b"\x00" + schema.schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, schema.parsed, datum)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("type", "data"),
    [
        ("com.smartgrid.meter.reading", READING),
        ("com.smartgrid.sensor.reading", SENSOR),
        ("com.smartgrid.meter.readings.batch", {"gateway_id": "GW-1", "readings": [READING] * 1000}),
    ],
)
def test_round_trip(catalogue: Catalogue, type: str, data: dict[str, object]) -> None:
    schema = catalogue.latest(type)
    datum = catalogue.validate(type, data)
    payload = encode(schema, datum)
    assert payload[0] == 0 and int.from_bytes(payload[1:5], "big") == schema.schema_id
    assert is_confluent_avro(payload)
    assert decode(payload, catalogue.by_id) == (schema, datum)


def test_decoded_timestamps_are_utc_datetimes(catalogue: Catalogue) -> None:
    schema = catalogue.latest("com.smartgrid.meter.reading")
    _, datum = decode(encode(schema, schema.validate(READING)), catalogue.by_id)
    assert datum["timestamp"] == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", False),
        (b"\x00\x00\x00", False),
        (b'{"meter_id": "MTR-1"}', False),
        (b"\x01\x00\x00\x00\x01\x02", False),
        (b"\x00\x00\x00\x00\x01", True),
    ],
)
def test_is_confluent_avro(payload: bytes, expected: bool) -> None:
    assert is_confluent_avro(payload) is expected


def test_framing_errors_name_the_payload(catalogue: Catalogue) -> None:
    schema = catalogue.latest("com.smartgrid.meter.reading")
    good = encode(schema, schema.validate(READING))
    unknown_id = b"\x00\x00\x00\x00\x07" + good[5:]
    cases = {
        b'{"meter_id": "MTR-1"}': (
            "expected magic byte 0 and a 4-byte schema id (Confluent Avro), found magic byte 123"
        ),
        b"\x00\x00": "found 2 bytes",
        unknown_id: "expected a known schema id, found 7",
        good[:-4]: "expected Avro binary of com.smartgrid.meter.reading v1, found bytes that do not decode",
        good[:5] + b"\xff" * 12: "found bytes that do not decode",
        good + b"\x00": "expected one Avro datum of com.smartgrid.meter.reading v1, found 1 bytes after it",
    }
    for payload, message in cases.items():
        with pytest.raises(InvalidData) as caught:
            decode(payload, catalogue.by_id)
        assert caught.value.path == "payload"
        assert message in caught.value.message


@pytest.mark.parametrize(
    ("type", "datum", "path", "message"),
    [
        (
            "com.smartgrid.sensor.reading",
            {**SENSOR, "timestamp": datetime(2024, 5, 1, tzinfo=UTC), "location": {"lat": 120.0, "lon": 5.0}},
            "location.lat",
            "expected a number >= -90 and <= 90, found number 120.0",
        ),
        (
            "com.smartgrid.meter.reading",
            {**READING, "timestamp": datetime(1999, 1, 1, tzinfo=UTC)},
            "timestamp",
            "expected a time from 2000-01-01T00:00Z",
        ),
        (
            "com.smartgrid.meter.reading",
            {**READING, "timestamp": datetime(2024, 5, 1, tzinfo=UTC), "registers": {"2.8.0": 1.0}},
            "registers.1.8.0",
            "required key",
        ),
        (
            "com.smartgrid.meter.reading",
            {**READING, "timestamp": datetime(2024, 5, 1, tzinfo=UTC), "registers": {"1.8.0": float("nan")}},
            "registers.1.8.0",
            "expected a finite number",
        ),
    ],
    ids=["minimum", "timestamp-range", "required-key", "nan"],
)
def test_decoded_data_must_keep_the_catalogue_rules(
    catalogue: Catalogue, type: str, datum: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(InvalidData) as caught:
        decode(frame(catalogue.latest(type), datum), catalogue.by_id)
    assert caught.value.path == path
    assert message in caught.value.message
