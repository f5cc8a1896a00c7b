"""Aggregation: register points in, aggregates of the buckets they touch brought up to date, in one transaction.

Energy is the rise of the import register (OBIS 1.8.0) from a meter's previous point to each point,
attributed whole to the 15-minute bucket of the later point (a gap spanning several buckets lands in
the last one). A register that went down was reset: the new value counts from zero. A meter's first
point is its baseline (no energy). Power (1.7.0), voltage (mean of the phases sent) and grid frequency
(14.7.0) are kept as sums and counts of the readings that carry them, so every bucket has their mean.
Points are kept once per meter and time (`meter_register_points`), so a duplicate changes nothing.

Two paths, with the same results. A new point later than every stored point of its meter (the common
case) adds its figures to its buckets in the statement that stores the batch (shared/analytics/
increments.py, which explains why that is exact). A late point re-splits the delta between its
neighbours, so the buckets of each late point and of the point after it are then recomputed from the
points, then the feeder and region quarters over their meters' quarters, then hours and days over the
quarters, all set-based (a few statements per batch, not per reading; each affected key is looked up by
index, `LATERAL ... OFFSET 0`, whatever the table statistics say). Advisory locks on the batch's meters,
feeders and regions serialise concurrent batches that touch the same aggregates.

A rebuild replaces a range's points with the source of truth's (the readings API's, streamed page by
page into a temporary table with COPY) and recomputes the range from them, in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncCursor

from shared.analytics.increments import add_points
from shared.analytics.points import Point
from shared.analytics.tables import (
    AGGREGATE_COLUMNS,
    FIGURES,
    ORIGIN,
    POINT_COLUMNS,
    QUARTER_FROM_POINTS,
    Quarters,
    combined,
)
from shared.stores.postgres import Database

LEVELS = ("meter", "feeder", "region")
BUCKETS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_LOCK = """
SELECT pg_advisory_xact_lock(key)
FROM (SELECT DISTINCT hashtextextended(name, 5) AS key FROM unnest(%s::text[]) AS name) AS keys ORDER BY key
"""
# Recompute meters' quarters from their points; answer the feeders and regions (before and after).
_METER_QUARTERS = f"""
WITH affected AS (SELECT * FROM unnest(%s::text[], %s::timestamptz[]) AS a(meter_id, q)),
points AS (
    SELECT a.meter_id, a.q, p.ts, p.feeder_id, p.region, p.import_kwh, p.power_kw, p.voltage_v,
           p.frequency_hz, previous.import_kwh AS previous_kwh
    FROM affected AS a
    CROSS JOIN LATERAL (SELECT * FROM meter_register_points AS x WHERE x.meter_id = a.meter_id AND x.ts >= a.q
                        AND x.ts < a.q + interval '15 minutes' OFFSET 0) AS p
    LEFT JOIN LATERAL (SELECT x.import_kwh FROM meter_register_points AS x
                       WHERE x.meter_id = p.meter_id AND x.ts < p.ts ORDER BY x.ts DESC LIMIT 1) AS previous ON true),
sums AS (
    SELECT meter_id, q, {QUARTER_FROM_POINTS}
    FROM points GROUP BY meter_id, q),
before AS (
    SELECT g.feeder_id, g.region, g.bucket_start FROM affected AS a
    CROSS JOIN LATERAL (SELECT * FROM aggregates AS x WHERE x.level = 'meter' AND x.bucket = '15min'
                        AND x.entity_id = a.meter_id AND x.bucket_start = a.q OFFSET 0) AS g),
after AS (
    INSERT INTO aggregates ({AGGREGATE_COLUMNS})
    SELECT 'meter', meter_id, '15min', q, feeder_id, region, {', '.join(FIGURES)}, energy_kwh * 4, q
    FROM sums
    ON CONFLICT (level, entity_id, bucket, bucket_start) DO UPDATE SET
        feeder_id = excluded.feeder_id, region = excluded.region, energy_kwh = excluded.energy_kwh,
        readings = excluded.readings, power_sum_kw = excluded.power_sum_kw, power_count = excluded.power_count,
        power_min_kw = excluded.power_min_kw, power_max_kw = excluded.power_max_kw,
        voltage_sum_v = excluded.voltage_sum_v, voltage_count = excluded.voltage_count,
        frequency_sum_hz = excluded.frequency_sum_hz, frequency_count = excluded.frequency_count,
        peak_demand_kw = excluded.peak_demand_kw, peak_at = excluded.peak_at, updated_at = now()
    RETURNING feeder_id, region, bucket_start)
SELECT feeder_id, region, bucket_start FROM before UNION SELECT feeder_id, region, bucket_start FROM after
"""
_AFFECTED = "(SELECT DISTINCT entity_id, {start} AS start FROM unnest(%(ids)s::text[], %(quarters)s::timestamptz[]) " \
            "AS a(entity_id, q) WHERE entity_id IS NOT NULL) AS a"
_DELETE = """
DELETE FROM aggregates WHERE ctid = ANY(ARRAY(
    SELECT g.ctid FROM {affected}
    CROSS JOIN LATERAL (SELECT ctid FROM aggregates AS x WHERE x.level = %(level)s AND x.bucket = %(bucket)s
                        AND x.entity_id = a.entity_id AND x.bucket_start = a.start OFFSET 0) AS g))
"""
# A feeder's or region's quarter: the sum of its meters' quarters.
_GROUP_QUARTERS = f"""
INSERT INTO aggregates ({AGGREGATE_COLUMNS})
SELECT %(level)s, a.entity_id, '15min', a.start, NULL, NULL, {combined("m")}, sum(m.energy_kwh) * 4, a.start
FROM {{affected}}
CROSS JOIN LATERAL (SELECT * FROM aggregates AS x WHERE x.level = 'meter' AND x.bucket = '15min'
                    AND x.{{column}} = a.entity_id AND x.bucket_start = a.start OFFSET 0) AS m
GROUP BY a.entity_id, a.start
"""
# An hour or day: the sum of its quarters; the peak is the highest quarter (the earliest of equals).
_ROLL_UP = f"""
INSERT INTO aggregates ({AGGREGATE_COLUMNS})
SELECT %(level)s, a.entity_id, %(bucket)s, a.start, NULL, NULL, {combined("q")}, max(q.peak_demand_kw),
       (array_agg(q.peak_at ORDER BY q.peak_demand_kw DESC, q.peak_at))[1]
FROM {{affected}}
CROSS JOIN LATERAL (SELECT * FROM aggregates AS x WHERE x.level = %(level)s AND x.bucket = '15min'
                    AND x.entity_id = a.entity_id AND x.bucket_start >= a.start
                    AND x.bucket_start < a.start + %(width)s OFFSET 0) AS q
GROUP BY a.entity_id, a.start
"""

# A rebuild stages the source's points in a temporary table (no lock held while they stream in), then
# holds off writers (batches wait on their first write) while it replaces the range's points and
# recomputes from them.
_REBUILD_STAGE = """
CREATE TEMP TABLE rebuild_points (meter_id text, ts timestamptz, feeder_id text, region text, import_kwh float8,
                                  power_kw float8, voltage_v float8, frequency_hz float8) ON COMMIT DROP
"""
_REBUILD_COPY = f"COPY rebuild_points ({POINT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_POINT_TYPES = ("text", "timestamptz", "text", "text", "float8", "float8", "float8", "float8")
_REBUILD_LOCK = "LOCK TABLE meter_register_points, aggregates IN SHARE ROW EXCLUSIVE MODE"
_REBUILD_DELETE_POINTS = """
WITH gone AS (DELETE FROM meter_register_points WHERE ts >= %(start)s AND ts < %(end)s RETURNING meter_id)
SELECT coalesce(array_agg(DISTINCT meter_id), '{}') FROM gone
"""
_REBUILD_INSERT_POINTS = f"""
INSERT INTO meter_register_points ({POINT_COLUMNS})
SELECT {POINT_COLUMNS} FROM rebuild_points WHERE ts >= %(start)s AND ts < %(end)s
ON CONFLICT (meter_id, ts) DO NOTHING
"""
_REBUILD_DELETE = "DELETE FROM aggregates WHERE bucket_start >= %(start)s AND bucket_start < %(end)s " \
                  "RETURNING level, entity_id"
# The quarters of the range's points, and of each meter's first point after the range (its delta starts in it).
_REBUILD_QUARTERS = f"""
WITH meters AS (SELECT DISTINCT meter_id FROM meter_register_points WHERE ts >= %(start)s AND ts < %(end)s
                UNION SELECT unnest(%(gone)s::text[]))
SELECT DISTINCT meter_id, date_bin('15 minutes', ts, {ORIGIN}) FROM meter_register_points
WHERE ts >= %(start)s AND ts < %(end)s
UNION
SELECT m.meter_id, date_bin('15 minutes', after.ts, {ORIGIN}) FROM meters AS m
CROSS JOIN LATERAL (SELECT p.ts FROM meter_register_points AS p WHERE p.meter_id = m.meter_id AND p.ts >= %(end)s
                    ORDER BY p.ts LIMIT 1) AS after
"""


class Aggregator:
    """Maintains the aggregates of the `analytics` database from meter register points."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def close(self) -> None:
        """Close the database pool."""
        await self._database.close()

    async def add(self, points: Sequence[Point]) -> dict[str, int]:
        """Store new points and bring every aggregate they change up to date; answers the counts of points,
        new points and meter quarters recomputed (none when every new point is in order)."""
        if not points:
            return {"points": 0, "new": 0, "quarters": 0}
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(_LOCK, [_lock_names(points)])
            added = await add_points(cur, _columns(points))
            if added.recompute[0]:
                await _recompute(cur, added.recompute)
        return {"points": len(points), "new": added.new, "quarters": len(added.recompute[0])}

    async def rebuild(self, start: datetime, end: datetime,
                      pages: AsyncIterable[Sequence[Point]]) -> set[tuple[str, str]]:
        """Replace the points in [start, end) with those of `pages` (the source of truth's, streamed: one page
        in memory at a time, staged in the database), then recompute every aggregate starting in the range
        (whole UTC days: the caller aligns), all in one transaction; answers the (level, id) of every entity
        whose aggregates were rebuilt."""
        bounds = {"start": start, "end": end}
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(_REBUILD_STAGE)
            async for page in pages:
                async with cur.copy(_REBUILD_COPY) as copy:
                    copy.set_types(list(_POINT_TYPES))
                    for row in zip(*_columns(page), strict=True):
                        await copy.write_row(row)
            await cur.execute(_REBUILD_LOCK)
            # Statistics that count the rows about to be replaced: the recomputation's lookups then take the
            # primary key, not an index that holds every meter's (dead, replaced) quarter of a time.
            await cur.execute("ANALYZE meter_register_points, aggregates")
            await cur.execute(_REBUILD_DELETE_POINTS, bounds)
            gone = (await cur.fetchone() or [[]])[0]
            await cur.execute(_REBUILD_INSERT_POINTS, bounds)
            await cur.execute(_REBUILD_DELETE, bounds)
            entities = {(level, entity) for level, entity in await cur.fetchall()}
            await cur.execute(_REBUILD_QUARTERS, {**bounds, "gone": gone})
            rows = await cur.fetchall()
            if rows:
                await _recompute(cur, ([row[0] for row in rows], [row[1] for row in rows]), analyze=True)
            await cur.execute("SELECT DISTINCT level, entity_id FROM aggregates WHERE bucket_start >= %(start)s "
                              "AND bucket_start < %(end)s", bounds)
            return entities | {(level, entity) for level, entity in await cur.fetchall()}


async def _recompute(cur: AsyncCursor[Any], meters: Quarters, *, analyze: bool = False) -> None:
    await cur.execute(_METER_QUARTERS, list(meters))
    groups = await cur.fetchall()
    if analyze:  # many new quarters (a rebuild): the roll-ups' plans need statistics that count them
        await cur.execute("ANALYZE aggregates")
    await _roll_up(cur, "meter", meters)
    for level, index in (("feeder", 0), ("region", 1)):
        keys = {(row[index], row[2]) for row in groups if row[index] is not None}
        quarters: Quarters = ([entity for entity, _ in keys], [start for _, start in keys])
        await _replace(cur, _GROUP_QUARTERS.replace("{column}", "feeder_id" if level == "feeder" else "region"),
                       level, "15min", quarters)
        await _roll_up(cur, level, quarters)


async def _roll_up(cur: AsyncCursor[Any], level: str, quarters: Quarters) -> None:
    for bucket in ("hour", "day"):
        await _replace(cur, _ROLL_UP, level, bucket, quarters)


async def _replace(cur: AsyncCursor[Any], insert: str, level: str, bucket: str, quarters: Quarters) -> None:
    width = BUCKETS[bucket]
    start = "a.q" if bucket == "15min" else f"date_bin(%(width)s, a.q, {ORIGIN})"
    affected = _AFFECTED.format(start=start)
    params = {"level": level, "bucket": bucket, "width": width, "ids": quarters[0], "quarters": quarters[1]}
    await cur.execute(_DELETE.format(affected=affected), params)
    await cur.execute(insert.replace("{affected}", affected), params)


def _lock_names(points: Sequence[Point]) -> list[str]:
    names = {f"meter:{p.meter_id}" for p in points}
    names.update(f"feeder:{p.feeder_id}" for p in points if p.feeder_id is not None)
    names.update(f"region:{p.region}" for p in points if p.region is not None)
    return sorted(names)


def _columns(points: Sequence[Point]) -> list[list[Any]]:
    return [[p.meter_id for p in points], [p.ts for p in points], [p.feeder_id for p in points],
            [p.region for p in points], [p.import_kwh for p in points], [p.power_kw for p in points],
            [p.voltage_v for p in points], [p.frequency_hz for p in points]]
