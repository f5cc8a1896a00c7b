"""The event catalogue: loading, schema ids, and JSON validation with precise field paths."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.validation.catalogue import (
    Catalogue,
    CatalogueError,
    InvalidData,
    UnknownEventType,
    UnknownSchemaId,
)
from shared.validation.validators import compile_validator

EVENTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
METER = "com.smartgrid.meter.reading"
BATCH = "com.smartgrid.meter.readings.batch"
SENSOR = "com.smartgrid.sensor.reading"
ALERT = "com.smartgrid.alert.raised"
ALERT_CHANGES = ("com.smartgrid.alert.acknowledged", "com.smartgrid.alert.cleared", "com.smartgrid.alert.updated")
WEATHER = "com.smartgrid.weather.observation"
NOTIFICATION_FAILED = "com.smartgrid.notification.failed"
NOTIFICATION_SENT = "com.smartgrid.notification.sent"
FORECAST = "com.smartgrid.forecast.issued"
AUDIT = "com.smartgrid.audit.recorded"

READING = {
    "meter_id": "MTR-000123",
    "site_id": "SITE-42",
    "timestamp": "2024-05-01T12:00:00Z",
    "registers": {"1.8.0": 12345.6, "2.8.0": 3, "32.7.0": 230.1},
}
VALID = {
    METER: READING,
    BATCH: {"gateway_id": "GW-7", "readings": [copy.deepcopy(READING) for _ in range(20)]},
    SENSOR: {
        "device_id": "TX-9",
        "feeder_id": "F-1",
        "location": {"lat": 52.1, "lon": 5.1},
        "timestamp": 1714564800000,
        "voltage_v": {"l1": 231.0, "l2": 229.5},
        "current_a": {"l1": 12, "l2": None, "l3": 11.5},
        "power_factor": 0.97,
    },
    ALERT: {
        "alert_id": "rule-1/TX-9",
        "rule_id": "rule-1",
        "severity": "critical",
        "device_id": "TX-9",
        "timestamp": "2024-05-01T12:00:00.250+02:00",
        "value": 131.5,
        "threshold": 120,
        "message": "hot-spot temperature above limit",
    },
    WEATHER: {"station_id": "WS-1", "region": "north", "timestamp": 1714564800000, "ghi_w_m2": 640},
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(EVENTS_DIR, max_future_seconds=300)


def changed(type: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A deep copy of the type's valid datum with `edit` applied."""
    datum = copy.deepcopy(VALID[type])
    edit(datum)
    return datum


def parent(datum: dict[str, Any], path: str) -> tuple[Any, str]:
    """The container at a slash-separated path (list indexes as numbers) and the last key."""
    *parents, last = path.split("/")
    node: Any = datum
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, last


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets the value at a path."""

    def edit(datum: dict[str, Any]) -> None:
        node, last = parent(datum, path)
        node[last] = value

    return edit


def removing(path: str) -> Callable[[dict[str, Any]], None]:
    """An edit that deletes the key at a path."""

    def edit(datum: dict[str, Any]) -> None:
        node, last = parent(datum, path)
        del node[last]

    return edit


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


INVALID = [
    # wrong JSON type
    (METER, setting("meter_id", 42), "meter_id", "expected a string, found integer 42"),
    (METER, setting("meter_id", None), "meter_id", "expected a string, found null"),
    (METER, setting("feeder_id", ["F-1"]), "feeder_id", "expected a string, found an array of 1 items"),
    (SENSOR, setting("voltage_v", "230"), "voltage_v", "expected an object (com.smartgrid.sensor.PhaseValues)"),
    (METER, setting("registers", [1.0]), "registers", "expected an object (map of double), found an array"),
    (BATCH, setting("readings", {}), "readings", "expected an array, found an object"),
    (SENSOR, setting("location/lat", "52.1"), "location.lat", "expected a number, found string '52.1'"),
    # bool is not a number; NaN and infinities are not numbers either
    (METER, setting("registers/1.8.0", True), "registers.1.8.0", "expected a number, found boolean true"),
    (SENSOR, setting("frequency_hz", float("nan")), "frequency_hz", "found non-finite number nan"),
    (WEATHER, setting("temperature_c", float("inf")), "temperature_c", "expected a finite number"),
    (ALERT, setting("value", float("-inf")), "value", "expected a finite number"),
    # missing and unknown fields
    (METER, removing("site_id"), "site_id", "required field: expected string, found nothing"),
    (METER, removing("timestamp"), "timestamp", "required field: expected timestamp-millis"),
    (METER, setting("colour", "red"), "colour", "unknown field: expected one of meter_id, site_id,"),
    (SENSOR, setting("voltage_v/l4", 1.0), "voltage_v.l4", "unknown field"),
    (SENSOR, removing("voltage_v/l1"), "voltage_v.l1", "required field: expected double"),
    (BATCH, removing("readings/0/meter_id"), "readings[0].meter_id", "required field"),
    (BATCH, setting("readings/3/extra", 1), "readings[3].extra", "unknown field"),
    # minimum / maximum, also on union-with-null fields
    (SENSOR, setting("voltage_v/l1", -1), "voltage_v.l1", "expected a number >= 0 and <= 100000, found integer -1"),
    (SENSOR, setting("voltage_v/l2", 100000.5), "voltage_v.l2", "<= 100000"),
    (SENSOR, setting("current_a/l3", -0.1), "current_a.l3", ">= 0"),
    (SENSOR, setting("location/lat", 90.01), "location.lat", "expected a number >= -90 and <= 90"),
    (SENSOR, setting("power_factor", -1.5), "power_factor", ">= -1 and <= 1"),
    (SENSOR, setting("rated_current_a", -3), "rated_current_a", "expected a number >= 0, found integer -3"),
    (WEATHER, setting("cloud_cover_pct", 101), "cloud_cover_pct", "<= 100"),
    # enum symbol
    (
        ALERT,
        setting("severity", "fatal"),
        "severity",
        "one of 'info', 'warning', 'critical', 'emergency', found string 'fatal'",
    ),
    (ALERT, setting("severity", 2), "severity", "found integer 2"),
    # map keyPattern and requiredKeys
    (METER, setting("registers/abc", 1.0), "registers.abc", "expected a key matching ^[0-9]{1,3}"),
    (METER, setting("registers/1.8.0\n", 1.0), "registers.1.8.0\n", "expected a key matching"),
    (METER, removing("registers/1.8.0"), "registers.1.8.0", "required key: expected double, found nothing"),
    # array minItems / maxItems and paths into items
    (BATCH, setting("readings", []), "readings", "expected at least 1 item, found 0"),
    (BATCH, setting("readings", [READING] * 10_001), "readings", "expected at most 10000 items, found 10001"),
    (
        BATCH,
        setting("readings/17/registers/1.8.0", "x"),
        "readings[17].registers.1.8.0",
        "expected a number, found string",
    ),
    (BATCH, setting("readings/19/timestamp", "soon"), "readings[19].timestamp", "expected an RFC 3339 timestamp"),
    # timestamps: form and range
    (METER, setting("timestamp", "2024-05-01T12:00:00"), "timestamp", "without a timezone"),
    (METER, setting("timestamp", "2024-05-01"), "timestamp", "without a timezone"),
    (
        METER,
        setting("timestamp", "yesterday"),
        "timestamp",
        "expected an RFC 3339 timestamp with a timezone, or epoch millis",
    ),
    (METER, setting("timestamp", 1714564800000.0), "timestamp", "found number 1714564800000.0"),
    (METER, setting("timestamp", True), "timestamp", "found boolean true"),
    (
        METER,
        setting("timestamp", "1999-12-31T23:59:59.999Z"),
        "timestamp",
        "a time from 2000-01-01T00:00Z to 300 s from now",
    ),
    (METER, setting("timestamp", 946684799999), "timestamp", "found integer 946684799999 (1999-12-31T23:59:59.999Z)"),
    (METER, setting("timestamp", 0), "timestamp", "found integer 0"),
    (METER, setting("timestamp", in_future(3600)), "timestamp", "to 300 s from now"),
    (METER, setting("timestamp", int((time.time() + 3600) * 1000)), "timestamp", "to 300 s from now"),
    (METER, setting("timestamp", 10**30), "timestamp", "to 300 s from now"),
]


@pytest.mark.parametrize(
    ("type", "edit", "path", "message"),
    INVALID,
    ids=[f"{type.rsplit('.', 1)[-1]}:{path}:{message[:30]}" for type, _, path, message in INVALID],
)
def test_invalid_datum_names_the_field(
    catalogue: Catalogue, type: str, edit: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    with pytest.raises(InvalidData) as caught:
        catalogue.validate(type, changed(type, edit))
    assert caught.value.path == path
    assert message in caught.value.message
    assert str(caught.value) == f"{path}: {caught.value.message}"


@pytest.mark.parametrize("datum", [[], "reading", None, 42], ids=["array", "string", "null", "number"])
def test_a_datum_that_is_not_an_object_has_the_empty_path(catalogue: Catalogue, datum: Any) -> None:
    with pytest.raises(InvalidData) as caught:
        catalogue.validate(METER, datum)
    assert caught.value.path == ""
    assert str(caught.value) == caught.value.message
    assert caught.value.message.startswith("expected an object (com.smartgrid.meter.MeterReading), found")


@pytest.mark.parametrize("type", sorted(VALID))
def test_valid_datums_pass_and_validation_is_idempotent(catalogue: Catalogue, type: str) -> None:
    datum = copy.deepcopy(VALID[type])
    normalised = catalogue.validate(type, datum)
    assert datum == VALID[type], "the input is left alone"
    assert catalogue.validate(type, normalised) == normalised, "Avro-typed datums validate too"


def test_missing_nullable_fields_get_their_default(catalogue: Catalogue) -> None:
    reading = catalogue.validate(METER, READING)
    assert reading["feeder_id"] is None and reading["region"] is None
    sensor = catalogue.validate(SENSOR, {"device_id": "D", "feeder_id": "F", "timestamp": 1714564800000})
    assert sensor["location"] is None and sensor["voltage_v"] is None and sensor["temperature_c"] is None
    assert catalogue.validate(SENSOR, VALID[SENSOR])["voltage_v"] == {"l1": 231.0, "l2": 229.5, "l3": None}


def test_numbers_become_floats(catalogue: Catalogue) -> None:
    registers = catalogue.validate(METER, READING)["registers"]
    assert registers == {"1.8.0": 12345.6, "2.8.0": 3.0, "32.7.0": 230.1}
    assert all(type(value) is float for value in registers.values())


NOON = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-05-01T12:00:00Z", NOON),
        ("2024-05-01T12:00:00+00:00", NOON),
        ("2024-05-01T14:00:00+02:00", NOON),
        ("2024-05-01T07:00:00-05:00", NOON),
        ("2024-05-01 12:00:00Z", NOON),
        (1714564800000, NOON),
        (1714564800250, NOON + timedelta(milliseconds=250)),
        ("2024-05-01T12:00:00.250999Z", NOON + timedelta(milliseconds=250)),
        (NOON, NOON),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),
        (946684800000, datetime(2000, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_in_both_forms_become_utc_datetimes(
    catalogue: Catalogue, timestamp: Any, expected: datetime
) -> None:
    moment = catalogue.validate(METER, {**READING, "timestamp": timestamp})["timestamp"]
    assert moment == expected
    assert moment.utcoffset() == timedelta(0) and moment.tzinfo is UTC


def test_timestamps_a_little_in_the_future_are_accepted(catalogue: Catalogue) -> None:
    catalogue.validate(METER, {**READING, "timestamp": in_future(240)})
    catalogue.validate(METER, {**READING, "timestamp": int((time.time() + 240) * 1000)})


def test_max_future_seconds_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGRID_MAX_FUTURE_SECONDS", "7200")
    monkeypatch.setenv("SMARTGRID_SCHEMAS_DIR", str(EVENTS_DIR.parent))
    lenient = Catalogue.load()
    assert lenient.validate(METER, {**READING, "timestamp": in_future(3600)})
    with pytest.raises(InvalidData, match="to 7200 s from now"):
        lenient.validate(METER, {**READING, "timestamp": in_future(3 * 3600)})


def test_inclusive_bounds(catalogue: Catalogue) -> None:
    for lat, lon in ((-90, -180), (90, 180)):
        catalogue.validate(SENSOR, {**VALID[SENSOR], "location": {"lat": lat, "lon": lon}})


def test_a_batch_of_10000_readings_is_accepted(catalogue: Catalogue) -> None:
    batch = catalogue.validate(BATCH, {"gateway_id": "GW", "readings": [READING] * 10_000})
    assert len(batch["readings"]) == 10_000


def test_unknown_type(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownEventType) as caught:
        catalogue.validate("com.smartgrid.nothing", {})
    assert caught.value.type == "com.smartgrid.nothing"
    with pytest.raises(UnknownEventType):
        catalogue.latest("com.smartgrid.nothing")


def test_lookup(catalogue: Catalogue) -> None:
    assert catalogue.types == (
        ALERT_CHANGES[0], ALERT_CHANGES[1], ALERT, ALERT_CHANGES[2], AUDIT, FORECAST, METER, BATCH, NOTIFICATION_FAILED,
        NOTIFICATION_SENT, SENSOR, WEATHER,
    )
    for type in catalogue.types:
        latest = catalogue.latest(type)
        assert catalogue.versions(type)[-1] is latest and latest.version == len(catalogue.versions(type))
        assert latest.type == type
        assert catalogue.by_id(latest.schema_id) is latest
        assert 0 < latest.schema_id < 2**31
    assert len({schema.schema_id for type in catalogue.types for schema in catalogue.versions(type)}) == 13
    with pytest.raises(UnknownSchemaId):
        catalogue.by_id(0)


def test_partition_keys(catalogue: Catalogue) -> None:
    keys = {type: catalogue.latest(type).partition_key for type in catalogue.types}
    assert keys == {
        ALERT: "device_id",
        **{change: "device_id" for change in ALERT_CHANGES},
        METER: "meter_id",
        BATCH: "gateway_id",
        SENSOR: "device_id",
        WEATHER: "station_id",
        NOTIFICATION_FAILED: "alert_id",
        NOTIFICATION_SENT: "alert_id",
        FORECAST: "entity_id",
        AUDIT: "actor",
    }


def test_the_batch_schema_is_self_contained(catalogue: Catalogue) -> None:
    batch = catalogue.latest(BATCH).schema
    readings = next(field for field in batch["fields"] if field["name"] == "readings")
    assert readings["type"]["items"] == catalogue.latest(METER).schema
    sensor = orjson.dumps(catalogue.latest(SENSOR).schema).decode()
    assert sensor.count('"name":"com.smartgrid.sensor.PhaseValues"') == 1, "defined once, then referred to"


def copy_events(tmp_path: Path) -> Path:
    events = tmp_path / "events"
    shutil.copytree(EVENTS_DIR, events)
    return events


def test_schema_ids_are_stable_when_a_version_is_added(catalogue: Catalogue, tmp_path: Path) -> None:
    events = copy_events(tmp_path)
    schema = orjson.loads((events / WEATHER / "v1.avsc").read_bytes())
    schema["fields"].append({"name": "snow_cm", "type": ["null", "double"], "default": None})
    (events / WEATHER / "v2.avsc").write_bytes(orjson.dumps(schema))
    grown = Catalogue.load(events, max_future_seconds=300)
    for type in catalogue.types:
        for old, kept in zip(catalogue.versions(type), grown.versions(type)):
            assert kept.schema_id == old.schema_id
    assert grown.latest(WEATHER).version == 2
    assert grown.validate(WEATHER, VALID[WEATHER])["snow_cm"] is None


def test_a_reference_resolves_to_the_latest_definition(tmp_path: Path) -> None:
    events = copy_events(tmp_path)
    schema = orjson.loads((events / METER / "v1.avsc").read_bytes())
    schema["fields"].append({"name": "tariff", "type": ["null", "string"], "default": None})
    (events / METER / "v2.avsc").write_bytes(orjson.dumps(schema))
    grown = Catalogue.load(events, max_future_seconds=300)
    batch = grown.validate(BATCH, {"gateway_id": "GW", "readings": [READING]})
    assert batch["readings"][0]["tariff"] is None


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (
            lambda events: (events / METER / "v1.avsc").rename(events / METER / "latest.avsc"),
            "expected a file name v<N>",
        ),
        (
            lambda events: (events / METER / "v1.avsc").rename(events / METER / "v2.avsc"),
            "expected versions v1..v1, found",
        ),
        (lambda events: (events / METER / "v1.avsc").write_text("{"), "expected an Avro schema in JSON"),
        (lambda events: shutil.rmtree(events / METER), "unknown 'com.smartgrid.meter.MeterReading'"),
        (
            lambda events: (events / ALERT / "v1.avsc").write_text(
                '{"type": "record", "name": "A", "fields": [{"name": "x", "type": "bytes"}]}'
            ),
            "expected a supported Avro type, found 'bytes'",
        ),
        (
            lambda events: (events / ALERT / "v1.avsc").write_text(
                '{"type": "record", "name": "A", "fields": [{"name": "x", "type": "string", "minimum": 1}]}'
            ),
            "expected no minimum on string",
        ),
    ],
    ids=["file-name", "gap", "not-json", "missing-reference", "unsupported-type", "misplaced-constraint"],
)
def test_load_errors_name_the_file(tmp_path: Path, arrange: Callable[[Path], Any], message: str) -> None:
    events = copy_events(tmp_path)
    arrange(events)
    with pytest.raises(CatalogueError, match=r"\.avsc|events") as caught:
        Catalogue.load(events, max_future_seconds=300)
    assert message in str(caught.value)


def test_recursive_named_types_validate() -> None:
    tree = {
        "type": "record",
        "name": "t.Node",
        "fields": [
            {"name": "label", "type": "string"},
            {"name": "children", "type": {"type": "array", "items": "t.Node"}, "maxItems": 2},
        ],
    }
    validate = compile_validator(tree, 300)
    leaf = {"label": "leaf", "children": []}
    assert validate({"label": "root", "children": [leaf, leaf]}) == {"label": "root", "children": [leaf, leaf]}
    with pytest.raises(InvalidData) as caught:
        validate({"label": "root", "children": [leaf, {"label": 3, "children": []}]})
    assert caught.value.path == "children[1].label"
