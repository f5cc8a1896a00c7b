"""A synthetic load series for the forecasting tests: daily and weekly shape, public holidays, noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.forecast.features.holidays import holiday_calendar


def synthetic_load(start: str = "2024-03-04", weeks: int = 10, freq: str = "15min", seed: int = 7) -> pd.Series:
    """Load in kW with a midday and an evening peak, lower on Saturdays, lowest on Sundays and DE holidays."""
    index = pd.date_range(start, pd.Timestamp(start) + pd.Timedelta(weeks=weeks), freq=freq, inclusive="left")
    hours = (index.hour + index.minute / 60).to_numpy()
    shape = 1 + 0.4 * np.exp(-((hours - 12) ** 2) / 8) + 0.6 * np.exp(-((hours - 19) ** 2) / 4)
    holidays = pd.DatetimeIndex(sorted(holiday_calendar("DE", sorted(set(index.year)))))
    factor = np.where(index.day_of_week == 5, 0.8, 1.0)
    factor = np.where((index.day_of_week == 6) | index.floor("D").isin(holidays), 0.55, factor)
    noise = np.random.default_rng(seed).normal(0, 0.08, len(index))
    return pd.Series(100 * (shape * factor + noise), index=index, name="load_kw")
