"""Features of the day-ahead load model: what each family holds, and that none looks at the forecast day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.forecast.errors import ForecastInputError
from shared.forecast.features.calendar import calendar_features
from shared.forecast.features.frame import build_features
from shared.forecast.features.holidays import (
    SUNDAY_OR_HOLIDAY,
    WORKING_DAY,
    holiday_calendar,
    holiday_features,
)
from shared.forecast.features.lags import lag_features
from shared.forecast.features.weather import weather_features
from shared.forecast.model.seasonal_naive import seasonal_naive
from tests.unit.synthetic_load import synthetic_load


def test_no_feature_uses_values_at_or_after_the_forecast_day() -> None:
    load = synthetic_load(weeks=4)
    rng = np.random.default_rng(1)
    for day in pd.date_range("2024-03-18", "2024-03-31", freq="5D"):
        tampered = load.copy()
        tampered[tampered.index >= day] = rng.normal(1000, 500, int((tampered.index >= day).sum()))
        target = load.index[(load.index >= day) & (load.index < day + pd.Timedelta(days=1))]
        pd.testing.assert_frame_equal(build_features(load, target), build_features(tampered, target))
        pd.testing.assert_frame_equal(build_features(load, target), build_features(load[load.index < day], target))
        pd.testing.assert_series_equal(seasonal_naive(load, target), seasonal_naive(tampered, target))


def test_lags_are_the_values_at_the_same_time_days_before() -> None:
    load = synthetic_load(weeks=3)
    target = pd.DatetimeIndex(["2024-03-20 18:15"])
    features = lag_features(load, target).iloc[0]
    assert features["lag_1d"] == load["2024-03-19 18:15"]
    assert features["lag_7d"] == load["2024-03-13 18:15"]
    assert features["lag_14d"] == load["2024-03-06 18:15"]
    same_times = pd.date_range("2024-03-13 18:15", periods=7, freq="D")
    assert features["same_time_mean_7d"] == pytest.approx(load[same_times].mean())
    assert features["day_mean_1d"] == pytest.approx(load["2024-03-19"].mean())
    assert features["day_mean_7d"] == pytest.approx(load["2024-03-13":"2024-03-19"].mean())


def test_lags_before_the_series_starts_are_missing() -> None:
    load = synthetic_load(weeks=1)
    features = lag_features(load, load.index[:96])
    assert features[["lag_1d", "lag_7d", "day_mean_1d"]].isna().all().all()


def test_calendar_features() -> None:
    features = calendar_features(pd.DatetimeIndex(["2024-03-09 13:45"])).iloc[0]
    assert features.to_dict() == {"minute_of_day": 825, "day_of_week": 5, "month": 3, "is_weekend": 1}


def test_holidays_of_the_day_the_day_before_and_the_week_before() -> None:
    index = pd.DatetimeIndex(["2024-05-01 10:00", "2024-05-02 10:00", "2024-05-08 10:00"])
    features = holiday_features(index, "DE")
    assert features["is_holiday"].tolist() == [1, 0, 0]
    assert features["holiday_1d_ago"].tolist() == [0, 1, 0]
    assert features["holiday_7d_ago"].tolist() == [0, 0, 1]
    assert features["day_type"].tolist() == [SUNDAY_OR_HOLIDAY, WORKING_DAY, WORKING_DAY]
    assert features["day_type_7d_ago"].tolist() == [WORKING_DAY, WORKING_DAY, SUNDAY_OR_HOLIDAY]


def test_holidays_of_another_country_and_a_subdivision() -> None:
    assert holiday_features(pd.DatetimeIndex(["2024-07-14"]), "FR")["is_holiday"].tolist() == [1]
    assert holiday_features(pd.DatetimeIndex(["2024-05-30"]), "DE-BY")["is_holiday"].tolist() == [1]
    assert holiday_features(pd.DatetimeIndex(["2024-05-30"]), "DE")["is_holiday"].tolist() == [0]


def test_an_unknown_country_is_named() -> None:
    with pytest.raises(ForecastInputError, match="found 'XX'"):
        holiday_calendar("XX", [2024])


def test_weather_columns_are_joined_on_the_target_times_when_given() -> None:
    index = pd.date_range("2024-03-04", periods=4, freq="15min")
    weather = pd.DataFrame({"temperature": [1.0, 2.0, 3.0]}, index=index[:3])
    joined = weather_features(index, weather)
    assert joined.columns.tolist() == ["weather_temperature"]
    assert joined["weather_temperature"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert np.isnan(joined["weather_temperature"].iloc[3])
    assert weather_features(index, None).columns.empty
