"""Reading the stored readings back: one page of a time range, each reading in the catalogue's shape.

Pages are ordered by (ts, device id) and cut by a keyset cursor (the last reading's time and id), so
every page is one index range scan, however deep: `meter_readings_ts_meter` /
`sensor_readings_ts_device` over the partitions of the range, or the primary key for one device.
Readings stored while a client pages never shift the pages it has not read yet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import sql

from shared.readings.rows import METER_REGISTER_COLUMNS, SENSOR_COLUMNS
from shared.stores.postgres import Database

Reading = dict[str, Any]

_PAGE = """
SELECT {columns} FROM {table}
WHERE ts >= %(low)s AND ts < %(end)s {after} {device}
ORDER BY ts, {id} LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the reading at `ts` of device `id`."""

    ts: datetime
    id: str

    def encode(self) -> str:
        """The cursor as an opaque URL-safe string."""
        return base64.urlsafe_b64encode(orjson.dumps([self.ts.isoformat(), self.id])).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor of a string made by `encode`; raises ValueError for anything else."""
        try:
            ts, id_ = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            at = datetime.fromisoformat(ts)
        except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
            raise ValueError(f"expected the `next` cursor of a previous page, found {text!r}") from None
        if at.tzinfo is None or not isinstance(id_, str):
            raise ValueError(f"expected the `next` cursor of a previous page, found {text!r}")
        return cls(at, id_)


@dataclass(frozen=True)
class Page:
    """Readings of one page, oldest first, and the cursor of the next page (None after the last)."""

    readings: list[Reading]
    next: Cursor | None


@dataclass(frozen=True)
class Kind:
    """A kind of device: its table, its id column, the columns read and how a row becomes a reading."""

    table: str
    id_column: str
    columns: tuple[str, ...]
    shape: Callable[[tuple[Any, ...]], Reading]


def meter_reading(row: tuple[Any, ...]) -> Reading:
    """A `meter_readings` row as the data of com.smartgrid.meter.reading (every register, other ones included)."""
    meter_id, ts, site_id, feeder_id, region, *values, others = row
    registers = {code: value for code, value in zip(METER_REGISTER_COLUMNS, values, strict=True) if value is not None}
    registers.update(others or {})
    return {"meter_id": meter_id, "site_id": site_id, "feeder_id": feeder_id, "region": region,
            "timestamp": ts.astimezone(UTC), "registers": registers}


def sensor_reading(row: tuple[Any, ...]) -> Reading:
    """A `sensor_readings` row as the data of com.smartgrid.sensor.reading."""
    (device_id, ts, feeder_id, lat, lon, v1, v2, v3, c1, c2, c3,
     rated, frequency, active, reactive, power_factor, temperature) = row
    return {"device_id": device_id, "feeder_id": feeder_id,
            "location": None if lat is None else {"lat": lat, "lon": lon},
            "timestamp": ts.astimezone(UTC), "voltage_v": _phases(v1, v2, v3), "current_a": _phases(c1, c2, c3),
            "rated_current_a": rated, "frequency_hz": frequency, "active_power_kw": active,
            "reactive_power_kvar": reactive, "power_factor": power_factor, "temperature_c": temperature}


def page_statement(kind: Kind, one_device: bool, after_cursor: bool) -> sql.Composed:
    """The SELECT of one page (parameters low, end, limit; device; after_ts, after_id)."""
    id_column = sql.Identifier(kind.id_column)
    return sql.SQL(_PAGE).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, kind.columns)), table=sql.Identifier(kind.table),
        id=id_column, device=_condition(one_device, "AND {} = %(device)s", id_column),
        after=_condition(after_cursor, "AND (ts, {}) > (%(after_ts)s, %(after_id)s)", id_column))


def _condition(present: bool, template: str, id_column: sql.Identifier) -> sql.Composable:
    """`template` with the id column, when the condition is present; nothing otherwise."""
    return sql.SQL(template).format(id_column) if present else sql.SQL("")


def _phases(l1: float | None, l2: float | None, l3: float | None) -> dict[str, float | None] | None:
    return None if l1 is None else {"l1": l1, "l2": l2, "l3": l3}


KINDS = {
    "meters": Kind("meter_readings", "meter_id",
                   ("meter_id", "ts", "site_id", "feeder_id", "region", *METER_REGISTER_COLUMNS.values(),
                    "other_registers"), meter_reading),
    "sensors": Kind("sensor_readings", "device_id", SENSOR_COLUMNS[:-1], sensor_reading),
}


class ReadingQuery:
    """Pages of the `smartgrid` database's readings."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def page(self, kind: Kind, start: datetime, end: datetime, limit: int, *,
                   after: Cursor | None = None, device: str | None = None) -> Page:
        """At most `limit` readings of `kind` (of one device, if given) with time in [start, end), after the
        cursor, ordered by time and device id."""
        params = {"low": start if after is None else max(start, after.ts), "end": end, "device": device,
                  "after_ts": after.ts if after else None, "after_id": after.id if after else None,
                  "limit": limit + 1}
        async with self._database.connection() as conn, conn.cursor() as cur:
            await cur.execute(page_statement(kind, device is not None, after is not None), params)
            rows = await cur.fetchall()
        readings = [kind.shape(row) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        return Page(readings, None if last is None else Cursor(last[1], last[0]))
