"""Weather features: temperature, irradiance or any numeric weather column, joined on the target times.

For a day-ahead forecast these are weather forecasts for the target day; in an evaluation the
observed values stand in for them.
"""

from __future__ import annotations

import pandas as pd


def weather_features(index: pd.DatetimeIndex, weather: pd.DataFrame | None) -> pd.DataFrame:
    """The columns of `weather` (indexed by time) at each time of `index`; none when no weather is given."""
    if weather is None:
        return pd.DataFrame(index=index)
    return weather.reindex(index).add_prefix("weather_")
