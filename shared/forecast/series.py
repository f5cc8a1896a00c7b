"""A load series from raw columns: parsed times, numeric values, one mean value per regular interval."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format
from pandas.tseries.frequencies import to_offset

from shared.forecast.errors import ForecastInputError

DAY = pd.Timedelta(days=1)


def interval(freq: str) -> pd.Timedelta:
    """The interval of a pandas frequency (15min, 30min, 1h, 1D) that divides one day."""
    try:
        step = pd.Timedelta(to_offset(freq))
    except ValueError:
        raise ForecastInputError(f"expected a pandas frequency such as 15min or 1h, found {freq!r}") from None
    if step <= pd.Timedelta(0) or DAY % step:
        raise ForecastInputError(f"expected an interval that divides one day (15min, 1h), found {freq!r}")
    return step


def parse_times(raw: pd.Series, column: str) -> pd.DatetimeIndex:
    """Timestamps of a text column in one format, guessed month-first then day-first; offsets become UTC."""
    if raw.empty:
        return pd.DatetimeIndex([])
    unparsed = np.ones(len(raw), dtype=bool)
    for time_format in _time_formats(raw):
        parsed = pd.to_datetime(raw, format=time_format, utc=True, errors="coerce")
        unparsed = parsed.isna().to_numpy()
        if not unparsed.any():
            return pd.DatetimeIndex(parsed).tz_convert(None)
    row = int(unparsed.argmax())
    raise ForecastInputError(f"{column}: expected a timestamp, found {raw.iloc[row]!r} in row {row + 1}")


def regular_series(times: pd.DatetimeIndex, raw: pd.Series, column: str, step: pd.Timedelta) -> pd.Series:
    """The values of `raw` at `times` as means over intervals of `step` from midnight (gaps stay NaN)."""
    values = pd.to_numeric(raw, errors="coerce")
    unparsed = (values.isna() & raw.notna()).to_numpy()
    if unparsed.any():
        row = int(unparsed.argmax())
        raise ForecastInputError(f"{column}: expected a number, found {raw.iloc[row]!r} in row {row + 1}")
    series = pd.Series(values.to_numpy(dtype=float), index=times, name=column).sort_index()
    return series.resample(step).mean()


def _time_formats(raw: pd.Series) -> list[str]:
    first = raw.dropna()
    if first.empty:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        guesses = [guess_datetime_format(str(first.iloc[0]), dayfirst=dayfirst) for dayfirst in (False, True)]
    return [guess for guess in dict.fromkeys(guesses) if guess]
