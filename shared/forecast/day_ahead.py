"""Day-ahead forecasting: train the model on a history, forecast a day from what was known at its midnight."""

from __future__ import annotations

import pandas as pd

from shared.forecast.defaults import DEFAULT_COUNTRY
from shared.forecast.features.frame import build_features
from shared.forecast.model.gradient_boosting import (
    BoostingSettings,
    GradientBoostingModel,
)
from shared.forecast.model.seasonal_naive import seasonal_naive
from shared.forecast.series import DAY


def day_index(day: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """The times of the day starting at midnight `day`, every `step`."""
    return pd.date_range(day, day + DAY, freq=step, inclusive="left")


def train(
    history: pd.Series,
    *,
    country: str = DEFAULT_COUNTRY,
    weather: pd.DataFrame | None = None,
    settings: BoostingSettings = BoostingSettings(),
) -> GradientBoostingModel:
    """The gradient-boosting model fitted on every known value of `history` (a regular series)."""
    features = build_features(history, history.index, country=country, weather=weather)
    return GradientBoostingModel(settings).fit(features, history)


def forecast_day(
    model: GradientBoostingModel,
    history: pd.Series,
    day: pd.Timestamp,
    step: pd.Timedelta,
    *,
    country: str = DEFAULT_COUNTRY,
    weather: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Columns `forecast` (the model) and `seasonal_naive` for `day`, from the values of `history` before it."""
    known = history[history.index < day]
    index = day_index(day, step)
    features = build_features(known, index, country=country, weather=weather)
    return pd.concat([model.predict(features), seasonal_naive(known, index)], axis=1)
