"""Schema evolution: each version v(N+1) of an event type reads data written with v(N).

Checked with Apache Avro's ReaderWriterCompatibilityChecker (the `avro` package of the
test extra), reader = the newer schema, writer = the older one: BACKWARD compatibility
in Schema Registry terms.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import avro.schema
import orjson
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from shared.validation.catalogue import Catalogue, EventSchema

EVENTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
CATALOGUE = Catalogue.load(EVENTS_DIR, max_future_seconds=300)


def read_problems(reader: EventSchema, writer: EventSchema) -> list[str]:
    """Why a reader with `reader` cannot read data written with `writer`; empty when it can."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(reader.text), avro.schema.parse(writer.text)
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(kind.value for kind in result.incompatibilities))
    return [f"{reader.type} v{reader.version} cannot read v{writer.version}: {kinds} at {sorted(result.locations)}"]


def evolution_problems(catalogue: Catalogue, type: str) -> list[str]:
    """The incompatibilities between consecutive versions of a type."""
    versions = catalogue.versions(type)
    return [problem for old, new in zip(versions, versions[1:]) for problem in read_problems(new, old)]


@pytest.mark.parametrize("type", CATALOGUE.types)
def test_every_version_reads_the_previous_one(type: str) -> None:
    assert evolution_problems(CATALOGUE, type) == []
    for schema in CATALOGUE.versions(type):
        assert avro.schema.parse(schema.text).fullname == schema.schema["name"], "valid Avro for any client"


def add_field(field: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda schema: schema["fields"].append(field)


def retype(name: str, new_type: Any) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        next(field for field in schema["fields"] if field["name"] == name)["type"] = new_type

    return edit


def drop_default(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        del next(field for field in schema["fields"] if field["name"] == name)["default"]

    return edit


def both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        for each in edits:
            each(schema)

    return edit


EVOLUTIONS = [
    # (type, edit that makes v2 from v1, expected incompatibility kinds; empty: compatible)
    ("com.smartgrid.meter.reading", add_field({"name": "tariff", "type": ["null", "string"], "default": None}), []),
    ("com.smartgrid.sensor.reading", add_field({"name": "thd_pct", "type": ["null", "double"], "default": None}), []),
    ("com.smartgrid.weather.observation", add_field({"name": "source", "type": "string", "default": "station"}), []),
    ("com.smartgrid.meter.reading", retype("feeder_id", ["null", "string", "long"]), []),
    ("com.smartgrid.alert.raised", drop_default("feeder_id"), []),
    (
        "com.smartgrid.meter.reading",
        add_field({"name": "tariff", "type": "string"}),
        ["reader_field_missing_default_value"],
    ),
    (
        "com.smartgrid.alert.raised",
        retype("severity", {"type": "enum", "name": "Severity", "symbols": ["info", "warning", "critical"]}),
        ["missing_enum_symbols"],
    ),
    ("com.smartgrid.alert.raised", retype("value", "float"), ["type_mismatch"]),
    (
        "com.smartgrid.weather.observation",
        both(drop_default("temperature_c"), retype("temperature_c", "double")),
        ["type_mismatch"],
    ),
]


@pytest.mark.parametrize(
    ("type", "edit", "expected"),
    EVOLUTIONS,
    ids=[
        "new-nullable-field",
        "new-nullable-double",
        "new-field-with-default",
        "union-gains-branch",
        "field-loses-default",
        "new-required-field",
        "enum-loses-symbol",
        "double-narrowed-to-float",
        "nullable-made-required",
    ],
)
def test_the_checker_on_a_second_version(
    tmp_path: Path, type: str, edit: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    events = tmp_path / "events"
    shutil.copytree(EVENTS_DIR, events)
    schema = orjson.loads((events / type / "v1.avsc").read_bytes())
    edit(schema)
    (events / type / "v2.avsc").write_bytes(orjson.dumps(schema))
    problems = evolution_problems(Catalogue.load(events, max_future_seconds=300), type)
    if not expected:
        assert problems == []
    else:
        assert len(problems) == 1 and all(kind in problems[0] for kind in expected), problems
