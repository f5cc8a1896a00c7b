"""The day-ahead forecast band of a feeder: the model with ≥ 28 days of history, else seasonal-naive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from local.report.series import band, history_days
from shared.forecast.day_ahead import day_index, forecast_day, train
from shared.forecast.model.seasonal_naive import seasonal_naive

MIN_HISTORY_DAYS = 28
VALIDATION_DAYS = 7
MODEL = "gradient boosting (shared/forecast)"
NAIVE = "seasonal-naive (same time last week)"


@dataclass(frozen=True)
class DayAhead:
    """A day's forecast band (columns forecast, low, high), the method that made it and its validation MAE."""

    band: pd.DataFrame
    method: str
    mae: float
    note: str


def day_ahead(history: pd.Series, day: pd.Timestamp, step: pd.Timedelta) -> DayAhead:
    """The forecast of `day` from `history` before it, ± the MAE over the last validation week."""
    known = history[history.index < day]
    days = history_days(known)
    if days >= MIN_HISTORY_DAYS:
        return _model(known, day, step)
    forecast = seasonal_naive(known, day_index(day, step)).rename("forecast")
    error = _mae(known, lambda each: seasonal_naive(known, day_index(each, step)), day, step)
    note = f"{days:.1f} days of history, fewer than {MIN_HISTORY_DAYS}: {NAIVE} only"
    return DayAhead(band(forecast, error), NAIVE, error, note)


def _model(known: pd.Series, day: pd.Timestamp, step: pd.Timedelta) -> DayAhead:
    validation = day - pd.Timedelta(days=VALIDATION_DAYS)
    trial = train(known[known.index < validation])
    error = _mae(known, lambda each: forecast_day(trial, known, each, step)["forecast"], day, step)
    forecast = forecast_day(train(known), known, day, step)["forecast"]
    return DayAhead(band(forecast, error), MODEL, error, f"validation MAE over the last {VALIDATION_DAYS} days")


def _mae(known: pd.Series, predict: Callable[[pd.Timestamp], pd.Series], day: pd.Timestamp,
         step: pd.Timedelta) -> float:
    """MAE of `predict(each day)` over the validation days before `day` (0 where nothing compares)."""
    errors: list[float] = []
    for offset in range(VALIDATION_DAYS, 0, -1):
        each = day - pd.Timedelta(days=offset)
        errors.extend((known.reindex(day_index(each, step)) - predict(each)).abs().dropna().tolist())
    return float(np.mean(errors)) if errors else 0.0
