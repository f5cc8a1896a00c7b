"""A load series from raw CSV columns: timestamps, numbers, the interval, resampling."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from shared.forecast.errors import ForecastInputError
from shared.forecast.series import interval, parse_times, regular_series


def test_day_first_timestamps_are_recognised() -> None:
    times = parse_times(pd.Series(["01.02.2016 00:00", "13.02.2016 00:15"]), "time")
    assert times.tolist() == [pd.Timestamp("2016-02-01 00:00"), pd.Timestamp("2016-02-13 00:15")]


def test_month_first_is_tried_first() -> None:
    times = parse_times(pd.Series(["02/01/2016 10:00", "02/13/2016 10:00"]), "time")
    assert times.tolist() == [pd.Timestamp("2016-02-01 10:00"), pd.Timestamp("2016-02-13 10:00")]


def test_offsets_become_utc() -> None:
    times = parse_times(pd.Series(["2016-03-27T01:45:00+01:00", "2016-03-27T03:00:00+02:00"]), "time")
    assert times.tolist() == [pd.Timestamp("2016-03-27 00:45"), pd.Timestamp("2016-03-27 01:00")]


def test_an_unparsable_timestamp_is_named_with_its_row() -> None:
    with pytest.raises(ForecastInputError, match=r"time: expected a timestamp, found 'soon' in row 2"):
        parse_times(pd.Series(["2016-03-27 01:45", "soon"]), "time")
    with pytest.raises(ForecastInputError, match=r"time: expected a timestamp, found '12.5' in row 1"):
        parse_times(pd.Series(["12.5", "13.5"]), "time")


def test_values_are_averaged_per_interval_and_gaps_stay_missing() -> None:
    times = pd.DatetimeIndex(["2016-01-01 00:00", "2016-01-01 00:05", "2016-01-01 00:35"])
    series = regular_series(times, pd.Series(["1", "3", "5"]), "load", pd.Timedelta(minutes=15))
    assert series.index.tolist() == list(pd.date_range("2016-01-01 00:00", periods=3, freq="15min"))
    assert series.iloc[0] == 2.0 and math.isnan(series.iloc[1]) and series.iloc[2] == 5.0
    assert series.name == "load"


def test_a_value_that_is_no_number_is_named_with_its_row() -> None:
    times = pd.DatetimeIndex(["2016-01-01 00:00", "2016-01-01 00:15"])
    with pytest.raises(ForecastInputError, match=r"load: expected a number, found 'n/a\?' in row 2"):
        regular_series(times, pd.Series(["1", "n/a?"]), "load", pd.Timedelta(minutes=15))


@pytest.mark.parametrize(("freq", "minutes"), [("15min", 15), ("1h", 60), ("30min", 30), ("1D", 1440)])
def test_intervals_that_divide_a_day(freq: str, minutes: int) -> None:
    assert interval(freq) == pd.Timedelta(minutes=minutes)


@pytest.mark.parametrize("freq", ["7min", "MS", "later", "-15min"])
def test_other_intervals_are_refused(freq: str) -> None:
    with pytest.raises(ForecastInputError, match=f"found '{freq}'"):
        interval(freq)
