"""Calendar features: time of day, day of week, month, weekend."""

from __future__ import annotations

import pandas as pd


def calendar_features(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Minute of the day, day of the week (0 Monday), month and a weekend flag for each time of `index`."""
    return pd.DataFrame(
        {
            "minute_of_day": index.hour * 60 + index.minute,
            "day_of_week": index.day_of_week,
            "month": index.month,
            "is_weekend": (index.day_of_week >= 5).astype(int),
        },
        index=index,
    )
