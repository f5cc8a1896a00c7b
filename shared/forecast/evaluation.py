"""Evaluation on held-out weeks: train on all but the last weeks, forecast each held-out day ahead.

The model is fitted once on the training weeks. Each held-out day is then forecast as it would be
at its midnight, from the values before it only, beside the seasonal-naive baseline; both are
scored on the held-out values that have a value one week earlier (the baseline needs it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from shared.forecast.day_ahead import forecast_day, train
from shared.forecast.defaults import DEFAULT_COUNTRY, DEFAULT_HOLDOUT_WEEKS
from shared.forecast.errors import ForecastInputError
from shared.forecast.metrics import Scores, scores, skill
from shared.forecast.model.gradient_boosting import BoostingSettings
from shared.forecast.series import DAY

MIN_TRAINING_DAYS = 28


@dataclass(frozen=True)
class Evaluation:
    """The model and the seasonal-naive baseline scored on the held-out weeks, and what they learnt from."""

    training_start: pd.Timestamp
    holdout_start: pd.Timestamp
    holdout_end: pd.Timestamp
    holdout_weeks: int
    training_values: int
    holdout_values: int
    model: Scores
    baseline: Scores
    skill: float
    training_seconds: float


def holdout_period(
    series: pd.Series, step: pd.Timedelta, weeks: int, min_training_days: int = MIN_TRAINING_DAYS
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start and (exclusive) end of the last `weeks` whole days of `series`, after `min_training_days` to train on."""
    if weeks < 1:
        raise ForecastInputError(f"expected at least 1 held-out week, found {weeks}")
    known = series.dropna().index
    if known.empty:
        raise ForecastInputError(f"{series.name}: expected load values, found none")
    end = (known[-1] + step).floor(DAY)
    start = end - pd.Timedelta(weeks=weeks)
    needed = min_training_days + 7 * weeks
    if known[0] > start - min_training_days * DAY:
        found = (end - known[0]) / DAY
        raise ForecastInputError(
            f"{series.name}: expected at least {needed} days of data ({min_training_days} to train, "
            f"{7 * weeks} held out), found {found:.1f}"
        )
    return start, end


def evaluate(
    series: pd.Series,
    step: pd.Timedelta,
    *,
    holdout_weeks: int = DEFAULT_HOLDOUT_WEEKS,
    country: str = DEFAULT_COUNTRY,
    weather: pd.DataFrame | None = None,
    settings: BoostingSettings = BoostingSettings(),
    min_training_days: int = MIN_TRAINING_DAYS,
) -> Evaluation:
    """Train on `series` (regular, every `step`) but its last `holdout_weeks`, and score day-ahead forecasts of them."""
    holdout_start, holdout_end = holdout_period(series, step, holdout_weeks, min_training_days)
    training = series[series.index < holdout_start]
    started = time.perf_counter()
    model = train(training, country=country, weather=weather, settings=settings)
    training_seconds = time.perf_counter() - started
    days = pd.date_range(holdout_start, holdout_end, freq=DAY, inclusive="left")
    forecasts = pd.concat(
        [forecast_day(model, series, day, step, country=country, weather=weather) for day in days]
    )
    compared = pd.concat([series.rename("actual"), forecasts], axis=1, join="inner").dropna()
    if compared.empty:
        raise ForecastInputError(f"{series.name}: expected held-out values with a value one week earlier, found none")
    model_scores = scores(compared["actual"], compared["forecast"])
    baseline_scores = scores(compared["actual"], compared["seasonal_naive"])
    return Evaluation(
        training_start=training.first_valid_index(),
        holdout_start=holdout_start,
        holdout_end=holdout_end,
        holdout_weeks=holdout_weeks,
        training_values=int(training.notna().sum()),
        holdout_values=len(compared),
        model=model_scores,
        baseline=baseline_scores,
        skill=skill(model_scores.mae, baseline_scores.mae),
        training_seconds=training_seconds,
    )
