"""Public holiday features from the `holidays` package: the target's day, and the days its lags come from.

The day type treats a public holiday like a Sunday, as the German standard load profiles do.
"""

from __future__ import annotations

import holidays
import numpy as np
import pandas as pd

from shared.forecast.defaults import DEFAULT_COUNTRY
from shared.forecast.errors import ForecastInputError
from shared.forecast.series import DAY

LOOKBACK_DAYS = (0, 1, 7)
WORKING_DAY, SATURDAY, SUNDAY_OR_HOLIDAY = 0, 1, 2


def holiday_calendar(country: str, years: list[int]) -> holidays.HolidayBase:
    """The public holidays of `country` (ISO 3166 code such as DE, or DE-BY for a subdivision) in `years`."""
    code, _, subdivision = country.partition("-")
    try:
        return holidays.country_holidays(code, subdiv=subdivision or None, years=years)
    except NotImplementedError:
        raise ForecastInputError(
            f"expected a country code the holidays package knows (DE, FR, DE-BY), found {country!r}"
        ) from None


def holiday_features(index: pd.DatetimeIndex, country: str = DEFAULT_COUNTRY) -> pd.DataFrame:
    """Holiday flags of the target's day, the day before and the week before; day types of the day and a week before."""
    days = index.floor(DAY)
    years = sorted({year for back in LOOKBACK_DAYS for year in (days - back * DAY).year.unique()})
    holiday_days = pd.DatetimeIndex(sorted(holiday_calendar(country, years)))
    frame = pd.DataFrame(index=index)
    for back in LOOKBACK_DAYS:
        name = "is_holiday" if back == 0 else f"holiday_{back}d_ago"
        frame[name] = (days - back * DAY).isin(holiday_days).astype(int)
    frame["day_type"] = _day_types(days, holiday_days)
    frame["day_type_7d_ago"] = _day_types(days - 7 * DAY, holiday_days)
    return frame


def _day_types(days: pd.DatetimeIndex, holiday_days: pd.DatetimeIndex) -> np.ndarray:
    weekday = days.day_of_week.to_numpy()
    sunday_like = (weekday == 6) | days.isin(holiday_days)
    return np.select([sunday_like, weekday == 5], [SUNDAY_OR_HOLIDAY, SATURDAY], WORKING_DAY)
