"""Lag features valid for a forecast issued at midnight for the whole day: only values before that day.

A target at time t of day D sees the values at t - 1 day and earlier (all of them before D's
midnight), and the daily means of D - 1 and the week before D.
"""

from __future__ import annotations

import pandas as pd

from shared.forecast.series import DAY

LAG_DAYS = (1, 2, 7, 14)
PROFILE_DAYS = 7


def lag(history: pd.Series, index: pd.DatetimeIndex, offset: pd.Timedelta) -> pd.Series:
    """The value of `history` at each time of `index` minus `offset` (NaN where it has none)."""
    return history.shift(freq=offset).reindex(index)


def lag_features(history: pd.Series, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Same-time values 1, 2, 7 and 14 days back, their 7-day mean, and daily means before the target's day."""
    frame = pd.DataFrame(index=index)
    for days in LAG_DAYS:
        frame[f"lag_{days}d"] = lag(history, index, days * DAY).to_numpy()
    same_time = pd.concat([lag(history, index, days * DAY) for days in range(1, PROFILE_DAYS + 1)], axis=1)
    frame[f"same_time_mean_{PROFILE_DAYS}d"] = same_time.mean(axis=1).to_numpy()
    daily = history.resample(DAY).mean()
    days = index.floor(DAY)
    frame["day_mean_1d"] = daily.shift(freq=DAY).reindex(days).to_numpy()
    week_mean = daily.rolling(PROFILE_DAYS, min_periods=1).mean()
    frame[f"day_mean_{PROFILE_DAYS}d"] = week_mean.shift(freq=DAY).reindex(days).to_numpy()
    return frame
