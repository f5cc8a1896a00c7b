"""The `smartgrid` database's reading tables: batched, idempotent writes into monthly partitions.

A batch is copied (binary COPY) straight into its table. When any of its rows is there
already (a redelivered batch, a reading sent twice), the primary key refuses the COPY and
the batch is copied into a per-connection temporary staging table instead, then moved with
INSERT ... ON CONFLICT DO NOTHING: every reading is one row, and the common case costs one
COPY. Partitions are created on first use of a month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection, errors, sql

from shared.readings.rows import (
    METER_COLUMNS,
    METER_TYPES,
    SENSOR_COLUMNS,
    SENSOR_TYPES,
    Row,
)
from shared.stores.postgres import Database

_PARTITION_LOCK = 0x5347_5054  # "SGPT"


@dataclass(frozen=True)
class Table:
    """A partitioned reading table, its COPY columns and their types."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def staging(self) -> str:
        return f"{self.name}_staging"

    @property
    def column_list(self) -> sql.Composed:
        return sql.SQL(", ").join(map(sql.Identifier, self.columns))


SENSOR_READINGS = Table("sensor_readings", SENSOR_COLUMNS, SENSOR_TYPES)
METER_READINGS = Table("meter_readings", METER_COLUMNS, METER_TYPES)


@dataclass(frozen=True)
class StoreResult:
    """How many rows a write received and how many were new."""

    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class ReadingStore:
    """Writes reading rows to the `smartgrid` database through a connection pool."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._partitions: set[tuple[str, int, int]] = set()

    async def write(self, table: Table, rows: Sequence[Row]) -> StoreResult:
        """Store `rows` (timestamp in column 1) once each; return counts."""
        if not rows:
            return StoreResult(0, 0)
        await self._ensure_partitions(table, rows)
        async with self._database.connection() as conn:
            try:
                async with conn.transaction():
                    await _copy(conn, table.name, table, rows)
                return StoreResult(len(rows), len(rows))
            except errors.UniqueViolation:
                pass  # some rows were stored before: keep only the new ones
            async with conn.transaction():
                await _copy(conn, table.staging, table, rows)
                cursor = await conn.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                        sql.Identifier(table.name), table.column_list, table.column_list,
                        sql.Identifier(table.staging),
                    )
                )
                inserted = cursor.rowcount
        return StoreResult(len(rows), inserted)

    async def _ensure_partitions(self, table: Table, rows: Sequence[Row]) -> None:
        months = {(row[1].year, row[1].month) for row in rows}
        missing = [(table.name, year, month) for year, month in months if (table.name, year, month) not in self._partitions]
        if not missing:
            return
        async with self._database.connection() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
                for name, year, month in missing:
                    await conn.execute(_partition_ddl(name, year, month))
        self._partitions.update(missing)


async def _copy(conn: AsyncConnection, target: str, table: Table, rows: Sequence[Row]) -> None:
    """Binary COPY of `rows` into `target` (the table or its staging table)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(target), table.column_list)
    async with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(table.types))
        for row in rows:
            await copy.write_row(row)


async def prepare_connection(conn: AsyncConnection) -> None:
    """Create a new connection's temporary staging tables (pass as the pool's `configure`)."""
    for table in (SENSOR_READINGS, METER_READINGS):
        await conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
                sql.Identifier(table.staging), sql.Identifier(table.name)
            )
        )
    await conn.commit()


def _partition_ddl(table: str, year: int, month: int) -> sql.Composed:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(f"{table}_{year:04d}_{month:02d}"), sql.Identifier(table),
        sql.Literal(start), sql.Literal(end),
    )
