"""Pure report figures: the load series of aggregate rows, its peak, a forecast band."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Peak:
    """The highest load of a series: when (UTC) and how much (kW)."""

    at: pd.Timestamp
    kw: float


def load_kw(rows: list[dict[str, Any]], step: pd.Timedelta) -> pd.Series:
    """Mean load in kW per bucket (energy / bucket hours), on a regular UTC-naive index; gaps stay NaN."""
    if not rows:
        return pd.Series([], index=pd.DatetimeIndex([]), dtype=float, name="load_kw")
    times = pd.DatetimeIndex(pd.to_datetime([row["bucket_start"] for row in rows], utc=True)).tz_convert(None)
    energy = pd.to_numeric(pd.Series([row.get("energy_kwh") for row in rows], index=times), errors="coerce")
    kw = (energy / (step / pd.Timedelta(hours=1))).rename("load_kw").sort_index()
    return kw.resample(step).mean()


def peak(series: pd.Series) -> Peak | None:
    """The peak of a load series; None when it has no value."""
    known = series.dropna()
    if known.empty:
        return None
    at = known.idxmax()
    return Peak(at, float(known[at]))


def band(forecast: pd.Series, mae: float) -> pd.DataFrame:
    """Columns `forecast`, `low` and `high`: the forecast ± its validation MAE (low not below zero)."""
    return pd.DataFrame({"forecast": forecast, "low": (forecast - mae).clip(lower=0.0), "high": forecast + mae})


def history_days(series: pd.Series) -> float:
    """Days between the first and last known value of a series (0 when it has none)."""
    known = series.dropna()
    return 0.0 if known.empty else (known.index[-1] - known.index[0]) / pd.Timedelta(days=1)
