"""Gather one feeder's report: its load over the period, the next day's forecast band, its peak and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pandas as pd

from local.report.forecast import MIN_HISTORY_DAYS, VALIDATION_DAYS, DayAhead, day_ahead
from local.report.series import Peak, load_kw, peak
from local.report.sources import Sources, feeder_alerts, feeder_buckets
from shared.analytics.aggregator import BUCKETS

HISTORY = timedelta(days=MIN_HISTORY_DAYS + VALIDATION_DAYS)


@dataclass(frozen=True)
class Period:
    """The report's time range [start, end) (UTC-aware) and the analytics bucket (15min or hour)."""

    start: datetime
    end: datetime
    bucket: str


@dataclass(frozen=True)
class FeederReport:
    """What the report shows of one feeder."""

    feeder: str
    load: pd.Series
    peak: Peak | None
    day_ahead: DayAhead
    alerts: list[dict[str, Any]]


async def feeder_reports(sources: Sources, feeders: list[str], period: Period) -> list[FeederReport]:
    """The report of each feeder, in the order given."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        return [await _feeder_report(session, sources, feeder, period) for feeder in feeders]


async def _feeder_report(session: aiohttp.ClientSession, sources: Sources, feeder: str,
                         period: Period) -> FeederReport:
    step = pd.Timedelta(BUCKETS[period.bucket])
    first = min(period.start, period.end - HISTORY)
    history = load_kw(await feeder_buckets(session, sources, feeder, period.bucket, first, period.end), step)
    shown = history[pd.Timestamp(period.start).tz_convert(None):]
    day = pd.Timestamp(period.end).tz_convert(None).ceil("D")
    alerts = await feeder_alerts(session, sources, feeder, period.start, period.end)
    return FeederReport(feeder, shown, peak(shown), day_ahead(history, day, step), alerts)
