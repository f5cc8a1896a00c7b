"""The forecast function's pure parts: filling the history before a day, lagged weather, the job and day
parameters, and the issued event against its schema."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from shared.cloudevents import PING_EVENT_TYPE, InvalidEvent, new_event
from shared.forecast.errors import ForecastInputError
from shared.forecast.service.api import day_param
from shared.forecast.service.entity import STEP, Entity
from shared.forecast.service.events import FORECAST_EVENT_TYPE, forecast_event
from shared.forecast.service.issuing import filled_history
from shared.forecast.service.jobs import job_of
from shared.forecast.service.weather import lagged_weather, observed_columns
from shared.params import BadParameter
from shared.validation.catalogue import Catalogue

DAY = pd.Timedelta(days=1)


def quarters(start: str, days: float) -> pd.Series:
    index = pd.date_range(start, periods=int(days * 96), freq=STEP)
    return pd.Series(np.arange(len(index), dtype=float), index=index)


def test_the_quarters_before_the_day_are_filled_with_the_week_before() -> None:
    load = quarters("2026-11-01", 20.25)  # ends at 06:00 of 2026-11-21
    day = pd.Timestamp("2026-11-22")
    history = filled_history(load, day)
    assert history.index[-1] == day - STEP and history.notna().all()
    tail = history[history.index >= pd.Timestamp("2026-11-21 06:00")]
    assert (tail.to_numpy() == load.reindex(tail.index - 7 * DAY).to_numpy()).all()
    assert (history[load.index] == load).all(), "known values stay"


def test_a_history_older_than_a_week_is_refused() -> None:
    with pytest.raises(ForecastInputError, match="week before 2026-11-30"):
        filled_history(quarters("2026-11-01", 20), pd.Timestamp("2026-11-30"))
    with pytest.raises(ForecastInputError):
        filled_history(pd.Series(dtype=float, index=pd.DatetimeIndex([])), pd.Timestamp("2026-11-30"))


def test_weather_is_the_observation_a_day_earlier() -> None:
    hours = pd.date_range("2026-11-01", periods=48, freq="h")
    observed = pd.DataFrame({"temperature_c": np.arange(48.0), "ghi_w_m2": np.nan}, index=hours)
    assert observed_columns(observed) == ["temperature_c"]
    index = pd.date_range("2026-11-02", periods=96, freq=STEP)
    weather = lagged_weather(observed, ["temperature_c"], index)
    assert weather.loc["2026-11-02 05:00", "temperature_c"] == 5.0
    assert weather.loc["2026-11-02 05:30", "temperature_c"] == 5.5, "interpolated within the hour"
    assert lagged_weather(observed, [], index) is None


def ping(data: object) -> object:
    return new_event(PING_EVENT_TYPE, "/ping", "p-1", data)


def test_the_job_is_named_by_the_ping() -> None:
    assert job_of(ping({"job": "train"})) == "train" and job_of(ping({"job": "forecast"})) == "forecast"
    for data in ({"job": "sweep"}, {}, ["train"]):
        with pytest.raises(InvalidEvent) as caught:
            job_of(ping(data))
        assert caught.value.field == "data.job"


def test_the_day_parameter() -> None:
    tomorrow = date(2026, 11, 23)
    assert day_param({}, tomorrow) == tomorrow
    assert day_param({"day": "2026-12-24"}, tomorrow) == date(2026, 12, 24)
    for text in ("20261224", "2026-12-32", "tomorrow", "2026-12-24T00:00"):
        with pytest.raises(BadParameter) as caught:
            day_param({"day": text}, tomorrow)
        assert caught.value.field == "day"


def test_the_issued_event_matches_its_schema() -> None:
    day = pd.Timestamp("2026-11-23")
    index = pd.date_range(day, periods=96, freq=STEP)
    forecast = pd.DataFrame({"forecast": np.linspace(10, 20, 96), "seasonal_naive": np.nan}, index=index)
    issued_at = datetime(2026, 11, 22, 5, tzinfo=UTC)
    event = forecast_event(Entity("feeder", "F-1"), day, forecast, 3, issued_at, "/test")
    data = Catalogue.load().validate(FORECAST_EVENT_TYPE, event.json())
    assert event.attributes["partitionkey"] == data["entity_id"] == "F-1"
    assert (data["level"], data["day"], data["model_version"], data["issued_at"]) == ("feeder", "2026-11-23", 3,
                                                                                       issued_at)
    assert data["baseline_kw"] == [None] * 96 and len(data["forecast_kw"]) == 96
