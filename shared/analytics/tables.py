"""What the aggregation statements share: the buckets' time origin, the columns of the two tables, and how
the figures of a bucket are computed from points or combined from finer buckets."""

from __future__ import annotations

from datetime import datetime

ORIGIN = "'2000-01-01 00:00:00+00'::timestamptz"
POINT_COLUMNS = "meter_id, ts, feeder_id, region, import_kwh, power_kw, voltage_v, frequency_hz"
AGGREGATE_COLUMNS = ("level, entity_id, bucket, bucket_start, feeder_id, region, energy_kwh, readings, power_sum_kw, "
                     "power_count, power_min_kw, power_max_kw, voltage_sum_v, voltage_count, frequency_sum_hz, "
                     "frequency_count, peak_demand_kw, peak_at")
# The figures of a bucket, in AGGREGATE_COLUMNS' order: sums and counts, and the extremes of power.
FIGURES = ("energy_kwh", "readings", "power_sum_kw", "power_count", "power_min_kw", "power_max_kw", "voltage_sum_v",
           "voltage_count", "frequency_sum_hz", "frequency_count")
# The extremes of power combine with these (SQL aggregate, two-value form); the other figures add up.
EXTREMES = {"power_min_kw": ("min", "LEAST"), "power_max_kw": ("max", "GREATEST")}
# A meter quarter's feeder, region and figures from its points (columns of meter_register_points, and
# previous_kwh: the register of the meter's point before each), grouped by quarter.
QUARTER_FROM_POINTS = """
(array_agg(feeder_id ORDER BY ts DESC))[1] AS feeder_id, (array_agg(region ORDER BY ts DESC))[1] AS region,
coalesce(sum(CASE WHEN import_kwh >= previous_kwh THEN import_kwh - previous_kwh ELSE import_kwh END)
         FILTER (WHERE previous_kwh IS NOT NULL), 0) AS energy_kwh,
count(*) AS readings, coalesce(sum(power_kw), 0) AS power_sum_kw, count(power_kw) AS power_count,
min(power_kw) AS power_min_kw, max(power_kw) AS power_max_kw,
coalesce(sum(voltage_v), 0) AS voltage_sum_v, count(voltage_v) AS voltage_count,
coalesce(sum(frequency_hz), 0) AS frequency_sum_hz, count(frequency_hz) AS frequency_count
"""

Quarters = tuple[list[str | None], list[datetime]]


def combined(alias: str) -> str:
    """The select list of the figures of a group of `alias`'s rows: sums, and the extremes of power."""
    return ", ".join(f"{EXTREMES.get(column, ('sum',))[0]}({alias}.{column}) AS {column}" for column in FIGURES)
