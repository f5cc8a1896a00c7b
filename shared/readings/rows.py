"""Validated readings (catalogue datums) as the rows of the `smartgrid` database's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

SENSOR_COLUMNS = (
    "device_id", "ts", "feeder_id", "lat", "lon",
    "voltage_l1_v", "voltage_l2_v", "voltage_l3_v",
    "current_l1_a", "current_l2_a", "current_l3_a", "rated_current_a",
    "frequency_hz", "active_power_kw", "reactive_power_kvar", "power_factor", "temperature_c",
    "event_id",
)
SENSOR_TYPES = ("text", "timestamptz", "text") + ("float8",) * 14 + ("text",)

# OBIS code -> column; any other register is kept in `other_registers`.
METER_REGISTER_COLUMNS = {
    "1.8.0": "import_kwh", "2.8.0": "export_kwh", "1.7.0": "import_kw", "2.7.0": "export_kw",
    "32.7.0": "voltage_l1_v", "52.7.0": "voltage_l2_v", "72.7.0": "voltage_l3_v",
    "31.7.0": "current_l1_a", "51.7.0": "current_l2_a", "71.7.0": "current_l3_a",
}
METER_COLUMNS = ("meter_id", "ts", "site_id", "feeder_id", "region", *METER_REGISTER_COLUMNS.values(),
                 "other_registers", "event_id")
METER_TYPES = ("text", "timestamptz", "text", "text", "text") + ("float8",) * 10 + ("jsonb", "text")

Row = tuple[Any, ...]


def sensor_row(reading: Mapping[str, Any], event_id: str) -> Row:
    """The `sensor_readings` row of one validated sensor reading."""
    location = reading.get("location") or {}
    voltage = reading.get("voltage_v") or {}
    current = reading.get("current_a") or {}
    return (
        reading["device_id"], reading["timestamp"], reading["feeder_id"],
        location.get("lat"), location.get("lon"),
        voltage.get("l1"), voltage.get("l2"), voltage.get("l3"),
        current.get("l1"), current.get("l2"), current.get("l3"),
        reading.get("rated_current_a"), reading.get("frequency_hz"), reading.get("active_power_kw"),
        reading.get("reactive_power_kvar"), reading.get("power_factor"), reading.get("temperature_c"),
        event_id,
    )


def meter_row(reading: Mapping[str, Any], event_id: str) -> Row:
    """The `meter_readings` row of one validated meter reading."""
    registers = reading["registers"]
    others = {code: value for code, value in registers.items() if code not in METER_REGISTER_COLUMNS}
    return (
        reading["meter_id"], reading["timestamp"], reading["site_id"],
        reading.get("feeder_id"), reading.get("region"),
        *(registers.get(code) for code in METER_REGISTER_COLUMNS),
        Jsonb(others) if others else None,
        event_id,
    )
