"""The in-order path of aggregation: new points later than every stored point of their meter are added to
the aggregates instead of recomputed, in the statement that stores them.

Why it equals the recompute (aggregator.py). A point later than every stored point of its meter changes no
other point's delta: its own delta is the rise from the meter's previous point (the stored latest one, or
the batch's previous in-order point: lag() seeded with the stored one), or its register after a reset, or
nothing for the meter's first point, and it lands whole in the point's own quarter. Every figure of a
bucket is a sum or a count over its points (add them) or their least or greatest power (merge with
LEAST/GREATEST). Deltas are never negative, so a quarter's energy and with it its demand (energy * 4) only
grow: the peak of an hour or day, the highest demand of its quarters, becomes the greater of its old peak
and the demands of the quarters just updated (an old peak quarter that was updated only grew), ties going
to the earliest quarter as in the recompute's `ORDER BY peak_demand_kw DESC, peak_at`.

What is not additive goes to the recompute path, exactly as before: a point that is not in order (a later
point of its meter is stored) with the first point after it, and an existing meter quarter whose feeder or
region (those of its latest point) changes, since the whole quarter then moves between feeders: only the
quarter of the meter's latest stored point can exist and be added to, so its feeder and region are that
point's, read by the primary key with it. The recompute runs after the increments and replaces every
bucket it touches from the quarters below it, which are then all right, so the two paths mixed give the
recompute's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncCursor

from shared.analytics.tables import (
    AGGREGATE_COLUMNS,
    EXTREMES,
    FIGURES,
    ORIGIN,
    POINT_COLUMNS,
    QUARTER_FROM_POINTS,
    Quarters,
    combined,
)

_MERGED = ", ".join(f"{column} = {EXTREMES[column][1]}(aggregates.{column}, excluded.{column})" if column in EXTREMES
                    else f"{column} = aggregates.{column} + excluded.{column}" for column in FIGURES)

# Store the points; add the in-order ones to their buckets; answer the counts and the quarters to recompute.
_ADD = f"""
WITH new AS (
    INSERT INTO meter_register_points ({POINT_COLUMNS})
    SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[], %s::float8[],
                         %s::float8[], %s::float8[])
    ON CONFLICT (meter_id, ts) DO NOTHING
    RETURNING {POINT_COLUMNS}),
latest AS (  -- each meter's latest point stored before this batch (the statement does not see its inserts)
    SELECT m.meter_id, l.ts, l.import_kwh, l.feeder_id, l.region FROM (SELECT DISTINCT meter_id FROM new) AS m
    LEFT JOIN LATERAL (SELECT x.ts, x.import_kwh, x.feeder_id, x.region FROM meter_register_points AS x
                       WHERE x.meter_id = m.meter_id ORDER BY x.ts DESC LIMIT 1) AS l ON true),
classified AS (
    SELECT n.*, date_bin('15 minutes', n.ts, {ORIGIN}) AS q, l.ts IS NULL OR n.ts > l.ts AS in_order,
           l.import_kwh AS latest_kwh, date_bin('15 minutes', l.ts, {ORIGIN}) AS latest_q,
           l.feeder_id AS latest_feeder_id, l.region AS latest_region
    FROM new AS n JOIN latest AS l USING (meter_id)),
deltas AS (
    SELECT *, lag(import_kwh, 1, latest_kwh) OVER (PARTITION BY meter_id ORDER BY ts) AS previous_kwh
    FROM classified WHERE in_order),
meter_quarters AS (
    SELECT meter_id, q, latest_q, latest_feeder_id, latest_region, {QUARTER_FROM_POINTS}
    FROM deltas GROUP BY meter_id, q, latest_q, latest_feeder_id, latest_region),
moved AS (  -- stored quarters (those of their meter's latest point, whose feeder and region they carry) whose
            -- feeder or region changes with their new latest point
    SELECT meter_id, q FROM meter_quarters
    WHERE q = latest_q AND (latest_feeder_id, latest_region) IS DISTINCT FROM (feeder_id, region)),
kept AS (SELECT * FROM meter_quarters AS m WHERE NOT EXISTS (
    SELECT FROM moved WHERE moved.meter_id = m.meter_id AND moved.q = m.q)),
contributions AS (  -- per level, entity and quarter
    SELECT e.level, e.entity_id, k.q, CASE WHEN e.level = 'meter' THEN min(k.feeder_id) END AS feeder_id,
           CASE WHEN e.level = 'meter' THEN min(k.region) END AS region,
           {combined("k")}
    FROM kept AS k
    CROSS JOIN LATERAL (VALUES ('meter', k.meter_id), ('feeder', k.feeder_id), ('region', k.region)) AS e(level, entity_id)
    WHERE e.entity_id IS NOT NULL
    GROUP BY e.level, e.entity_id, k.q),
quarters AS (
    INSERT INTO aggregates ({AGGREGATE_COLUMNS})
    SELECT level, entity_id, '15min', q, feeder_id, region, {', '.join(FIGURES)}, energy_kwh * 4, q
    FROM contributions
    ON CONFLICT (level, entity_id, bucket, bucket_start) DO UPDATE SET {_MERGED}, updated_at = now(),
        feeder_id = excluded.feeder_id, region = excluded.region,
        peak_demand_kw = (aggregates.energy_kwh + excluded.energy_kwh) * 4
    RETURNING level, entity_id, bucket_start, peak_demand_kw),
roll_ups AS (  -- hours and days: the contributions added, the peak raised to the highest updated quarter's
    INSERT INTO aggregates ({AGGREGATE_COLUMNS})
    SELECT c.level, c.entity_id, b.bucket, date_bin(b.width, c.q, {ORIGIN}), NULL, NULL, {combined('c')},
           max(u.peak_demand_kw), (array_agg(c.q ORDER BY u.peak_demand_kw DESC, c.q))[1]
    FROM contributions AS c
    JOIN quarters AS u ON u.level = c.level AND u.entity_id = c.entity_id AND u.bucket_start = c.q
    CROSS JOIN (VALUES ('hour', interval '1 hour'), ('day', interval '1 day')) AS b(bucket, width)
    GROUP BY c.level, c.entity_id, b.bucket, date_bin(b.width, c.q, {ORIGIN})
    ON CONFLICT (level, entity_id, bucket, bucket_start) DO UPDATE SET {_MERGED}, updated_at = now(),
        peak_demand_kw = GREATEST(aggregates.peak_demand_kw, excluded.peak_demand_kw),
        peak_at = CASE WHEN excluded.peak_demand_kw > aggregates.peak_demand_kw THEN excluded.peak_at
                       WHEN excluded.peak_demand_kw < aggregates.peak_demand_kw THEN aggregates.peak_at
                       ELSE LEAST(aggregates.peak_at, excluded.peak_at) END),
late AS (SELECT meter_id, ts, q FROM classified WHERE NOT in_order),
recompute AS (  -- the quarters of the late points, of the first point after each of them, and the moved ones
    SELECT meter_id, q FROM late
    UNION
    SELECT late.meter_id, date_bin('15 minutes', after.ts, {ORIGIN}) FROM late
    CROSS JOIN LATERAL (SELECT p.ts FROM meter_register_points AS p WHERE p.meter_id = late.meter_id
                        AND p.ts > late.ts ORDER BY p.ts LIMIT 1) AS after
    UNION
    SELECT meter_id, q FROM moved)
SELECT (SELECT count(*) FROM new), array_agg(meter_id), array_agg(q) FROM recompute
"""


@dataclass(frozen=True)
class Added:
    """What storing a batch did: how many points were new, and the meter quarters left to recompute."""

    new: int
    recompute: Quarters


async def add_points(cur: AsyncCursor[Any], columns: list[list[Any]]) -> Added:
    """Store the points (`columns`, as POINT_COLUMNS) and add the in-order ones to the aggregates."""
    await cur.execute(_ADD, columns)
    row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY answers one row
    new, meters, starts = row
    return Added(new, (meters or [], starts or []))
