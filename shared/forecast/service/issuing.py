"""Forecasting one entity's day with its model, the seasonal-naive baseline beside it.

A forecast of day D is issued from what is known when it runs, possibly on the morning of D - 1:
the quarters between the last known load and D's midnight are filled with the load one week
earlier before the features are built (a history ending more than a week before D is refused).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from shared.forecast.day_ahead import forecast_day
from shared.forecast.errors import ForecastInputError
from shared.forecast.model.gradient_boosting import GradientBoostingModel
from shared.forecast.model.seasonal_naive import SEASON, seasonal_naive
from shared.forecast.series import DAY
from shared.forecast.service.entity import STEP
from shared.forecast.service.weather import lagged_weather

# The longest lag of the features (14 days), with a day to spare: the history a forecast reads.
HISTORY_DAYS = 15


def filled_history(load: pd.Series, day: pd.Timestamp) -> pd.Series:
    """`load` up to `day`'s midnight, the quarters after its last value filled with the value one week earlier."""
    last = load.last_valid_index()
    if last is None or last < day - SEASON:
        raise ForecastInputError(f"expected load values in the week before {day:%Y-%m-%d}, last one at {last}")
    index = pd.date_range(load.index[0], day, freq=STEP, inclusive="left")
    history = load.reindex(index)
    tail = index[index > last]
    history[tail] = seasonal_naive(history, tail).to_numpy()
    return history


def issue(model: GradientBoostingModel, features: dict[str, Any], load: pd.Series,
          observed_weather: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """Columns `forecast` and `seasonal_naive` (kW) for the quarters of `day` (naive UTC midnight).

    `features` are the model's stored feature settings (its country and weather columns).
    """
    history = filled_history(load, day)
    index = pd.date_range(history.index[0], day + DAY, freq=STEP, inclusive="left")
    weather = lagged_weather(observed_weather, features["weather_columns"], index)
    return forecast_day(model, history, day, STEP, country=features["country"], weather=weather)
