"""The seasonal-naive baseline: the value at the same time one week earlier."""

from __future__ import annotations

import pandas as pd

from shared.forecast.features.lags import lag

SEASON = pd.Timedelta(weeks=1)


def seasonal_naive(history: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """The forecast for each time of `index`: the value of `history` one week before it (NaN where none)."""
    return lag(history, index, SEASON).rename("seasonal_naive")
