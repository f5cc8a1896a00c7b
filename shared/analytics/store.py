"""Reading the aggregates: one entity's buckets over a time range, with means and load factor derived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from shared.analytics.aggregator import BUCKETS
from shared.stores.postgres import Database

_BUCKETS = """
SELECT bucket_start, bucket_start + %(width)s AS bucket_end, energy_kwh, readings,
       power_sum_kw / NULLIF(power_count, 0) AS power_mean_kw, power_min_kw, power_max_kw,
       peak_demand_kw, peak_at,
       CASE WHEN peak_demand_kw > 0 THEN energy_kwh / %(hours)s / peak_demand_kw END AS load_factor,
       voltage_sum_v / NULLIF(voltage_count, 0) AS voltage_mean_v,
       frequency_sum_hz / NULLIF(frequency_count, 0) AS frequency_mean_hz
FROM aggregates
WHERE level = %(level)s AND entity_id = %(entity)s AND bucket = %(bucket)s
  AND bucket_start >= %(start)s AND bucket_start < %(end)s
ORDER BY bucket_start
"""


class AggregateStore:
    """The aggregates of the `analytics` database, as the API answers them."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def buckets(self, level: str, entity: str, bucket: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The buckets of one meter, feeder or region starting in [start, end), oldest first; empty ones left out."""
        width = BUCKETS[bucket]
        params = {"level": level, "entity": entity, "bucket": bucket, "start": start, "end": end,
                  "width": width, "hours": width.total_seconds() / 3600}
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_BUCKETS, params)
            return await cur.fetchall()
