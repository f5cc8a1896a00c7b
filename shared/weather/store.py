"""The `weather_observations` table of the analytics database: idempotent upserts."""

from __future__ import annotations

from collections.abc import Sequence

from shared.stores.postgres import Database
from shared.weather.observation import Observation

_UPSERT = """
INSERT INTO weather_observations (station_id, region, ts, temperature_c, ghi_w_m2, wind_speed_m_s,
                                  cloud_cover_pct, relative_humidity_pct)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (station_id, ts) DO UPDATE SET
    region = EXCLUDED.region,
    temperature_c = EXCLUDED.temperature_c,
    ghi_w_m2 = EXCLUDED.ghi_w_m2,
    wind_speed_m_s = EXCLUDED.wind_speed_m_s,
    cloud_cover_pct = EXCLUDED.cloud_cover_pct,
    relative_humidity_pct = EXCLUDED.relative_humidity_pct
"""


class WeatherStore:
    """Writes observations once per station and time (a repeat updates the row)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def upsert(self, observations: Sequence[Observation]) -> None:
        """Store the observations in one transaction."""
        rows = [
            (o.station_id, o.region, o.timestamp, o.temperature_c, o.ghi_w_m2, o.wind_speed_m_s,
             o.cloud_cover_pct, o.relative_humidity_pct)
            for o in observations
        ]
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_UPSERT, rows)

    async def close(self) -> None:
        """Close the database pool."""
        await self._database.close()
