"""The feature frame of the day-ahead load model: every feature family joined on the target times."""

from __future__ import annotations

import pandas as pd

from shared.forecast.defaults import DEFAULT_COUNTRY
from shared.forecast.features.calendar import calendar_features
from shared.forecast.features.holidays import holiday_features
from shared.forecast.features.lags import lag_features
from shared.forecast.features.weather import weather_features


def build_features(
    history: pd.Series,
    index: pd.DatetimeIndex,
    *,
    country: str = DEFAULT_COUNTRY,
    weather: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Lag, calendar, holiday and weather features for the times of `index`, from the load in `history`."""
    families = [
        lag_features(history, index),
        calendar_features(index),
        holiday_features(index, country),
        weather_features(index, weather),
    ]
    return pd.concat(families, axis=1)
