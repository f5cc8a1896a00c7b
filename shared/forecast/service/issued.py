"""The `forecasts` table: the quarters of each issued day-ahead forecast; re-issuing a day replaces them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from psycopg.rows import dict_row

from shared.forecast.service.entity import Entity
from shared.forecast.service.values import finite, utc
from shared.stores.postgres import Database

_UPSERT = """
INSERT INTO forecasts (level, entity_id, ts, forecast_kw, baseline_kw, model_version, issued_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (level, entity_id, ts) DO UPDATE SET
    forecast_kw = EXCLUDED.forecast_kw,
    baseline_kw = EXCLUDED.baseline_kw,
    model_version = EXCLUDED.model_version,
    issued_at = EXCLUDED.issued_at
"""
_DAY = """
SELECT ts, forecast_kw, baseline_kw, model_version, issued_at FROM forecasts
WHERE level = %s AND entity_id = %s AND ts >= %s AND ts < %s ORDER BY ts
"""


class ForecastStore:
    """Writes and reads the stored forecasts."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def upsert(self, entity: Entity, forecast: pd.DataFrame, model_version: int, issued_at: datetime) -> None:
        """Store the `forecast` and `seasonal_naive` columns of a day in one transaction."""
        rows = [
            (entity.level, entity.entity_id, utc(ts), float(model), finite(baseline), model_version, issued_at)
            for ts, model, baseline in forecast[["forecast", "seasonal_naive"]].itertuples()
        ]
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_UPSERT, rows)

    async def day(self, entity: Entity, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The stored quarters of [start, end), oldest first."""
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_DAY, (entity.level, entity.entity_id, start, end))
            return await cursor.fetchall()
