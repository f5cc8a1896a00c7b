"""The inputs of the forecasts, read from the analytics database: 15-minute loads and regional weather.

A quarter's mean power in kW is its energy in kWh times 4. Times come back as naive UTC, the form
the feature code of shared/forecast works in.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from shared.forecast.series import regular_series
from shared.forecast.service.entity import STEP, Entity
from shared.stores.postgres import Database

WEATHER_COLUMNS = ("temperature_c", "ghi_w_m2")

# The daily rows list the same entities as the 15-minute ones, 96 times fewer to read.
_ENTITIES = """
SELECT DISTINCT level, entity_id FROM aggregates
WHERE level IN ('feeder', 'region') AND bucket = 'day'
ORDER BY level, entity_id
"""
_LOAD = """
SELECT bucket_start, energy_kwh * 4 FROM aggregates
WHERE level = %s AND entity_id = %s AND bucket = '15min' AND bucket_start >= %s AND bucket_start < %s
ORDER BY bucket_start
"""
_FEEDER_REGION = """
SELECT region FROM aggregates
WHERE level = 'meter' AND bucket = '15min' AND feeder_id = %s AND region IS NOT NULL
LIMIT 1
"""
_WEATHER = f"""
SELECT ts, {", ".join(f"avg({column})" for column in WEATHER_COLUMNS)} FROM weather_observations
WHERE region = %s AND ts >= %s AND ts < %s
GROUP BY ts ORDER BY ts
"""


class HistoryStore:
    """Reads the load of feeders and regions and the weather of their region."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def entities(self) -> list[Entity]:
        """Every feeder and region with aggregates."""
        return [Entity(level, entity_id) for level, entity_id in await self._rows(_ENTITIES, ())]

    async def load(self, entity: Entity, start: datetime, end: datetime) -> pd.Series:
        """The mean power (kW) of each quarter in [start, end) on a regular grid, gaps NaN; empty when none."""
        rows = await self._rows(_LOAD, (entity.level, entity.entity_id, start, end))
        times = pd.DatetimeIndex([row[0] for row in rows]).tz_convert(None) if rows else pd.DatetimeIndex([])
        return regular_series(times, pd.Series([row[1] for row in rows], dtype=float), "load_kw", STEP)

    async def region(self, entity: Entity) -> str | None:
        """The region whose weather applies: the region itself, or a feeder's region from its meters."""
        if entity.level == "region":
            return entity.entity_id
        rows = await self._rows(_FEEDER_REGION, (entity.entity_id,))
        return rows[0][0] if rows else None

    async def weather(self, region: str | None, start: datetime, end: datetime) -> pd.DataFrame:
        """The region's observations in [start, end), averaged over its stations, by naive UTC time (none
        without a region)."""
        rows = await self._rows(_WEATHER, (region, start, end)) if region is not None else []
        index = pd.DatetimeIndex([row[0] for row in rows]).tz_convert(None) if rows else pd.DatetimeIndex([])
        return pd.DataFrame([row[1:] for row in rows], index=index, columns=list(WEATHER_COLUMNS), dtype=float)

    async def _rows(self, query: str, params: tuple) -> list[tuple]:
        async with self._database.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(query, params)
            return await cursor.fetchall()
