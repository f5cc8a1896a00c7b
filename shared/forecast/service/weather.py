"""The weather input of the forecast model: what was observed at the same time the day before.

There is no weather forecast feed yet, so the model learns from, and is served, the regional
observations one day earlier: known when a day-ahead forecast is issued, the same in training and
serving. Observations are averaged per quarter, gaps of up to an hour interpolated, and the last
observation carried forward for up to a day (the hours of the issuing day not yet observed).
"""

from __future__ import annotations

import pandas as pd

from shared.forecast.series import DAY
from shared.forecast.service.entity import STEP

INTERPOLATED_QUARTERS = 4
CARRIED_QUARTERS = 96


def observed_columns(observed: pd.DataFrame) -> list[str]:
    """The weather columns with at least one observation."""
    return [column for column in observed.columns if observed[column].notna().any()]


def lagged_weather(observed: pd.DataFrame, columns: list[str], index: pd.DatetimeIndex) -> pd.DataFrame | None:
    """For each time of `index`, the `columns` observed one day earlier (NaN where unknown); None without columns."""
    if not columns:
        return None
    grid = pd.date_range(index[0] - DAY, index[-1] - DAY, freq=STEP)
    quarters = observed.reindex(columns=columns).resample(STEP).mean().reindex(grid)
    filled = quarters.interpolate(limit=INTERPOLATED_QUARTERS, limit_area="inside").ffill(limit=CARRIED_QUARTERS)
    return filled.shift(freq=DAY).reindex(index)
