"""The day-ahead model against the seasonal-naive baseline, and its evaluation on held-out weeks."""

from __future__ import annotations

import pandas as pd
import pytest

from shared.forecast.day_ahead import day_index, forecast_day, train
from shared.forecast.errors import ForecastInputError
from shared.forecast.evaluation import MIN_TRAINING_DAYS, evaluate, holdout_period
from shared.forecast.features.frame import build_features
from shared.forecast.model.gradient_boosting import (
    BoostingSettings,
    GradientBoostingModel,
)
from shared.forecast.model.seasonal_naive import seasonal_naive
from tests.unit.synthetic_load import synthetic_load

STEP = pd.Timedelta(minutes=15)
SMALL = BoostingSettings(max_iter=80, learning_rate=0.1)


def test_the_model_beats_the_seasonal_naive_baseline_on_held_out_weeks_with_holidays() -> None:
    load = synthetic_load(start="2024-03-04", weeks=10)
    result = evaluate(load, STEP, holdout_weeks=2, settings=SMALL)
    assert (result.holdout_start, result.holdout_end) == (pd.Timestamp("2024-04-29"), pd.Timestamp("2024-05-13"))
    assert result.holdout_values == 14 * 96
    assert result.training_values == 8 * 7 * 96
    assert result.model.mae < result.baseline.mae
    assert result.skill > 0.2


def test_on_a_holiday_the_model_beats_last_week() -> None:
    load = synthetic_load(start="2024-03-04", weeks=10)
    model = train(load[load.index < pd.Timestamp("2024-04-29")], settings=SMALL)
    may_day = pd.Timestamp("2024-05-01")
    forecast = forecast_day(model, load, may_day, STEP)
    actual = load[day_index(may_day, STEP)]
    assert (forecast["forecast"] - actual).abs().mean() < 0.5 * (forecast["seasonal_naive"] - actual).abs().mean()


def test_seasonal_naive_is_the_value_a_week_before() -> None:
    load = synthetic_load(weeks=2)
    index = pd.DatetimeIndex(["2024-03-12 07:30"])
    assert seasonal_naive(load, index).iloc[0] == load["2024-03-05 07:30"]


def test_the_model_predicts_only_the_columns_it_was_fitted_on() -> None:
    load = synthetic_load(weeks=3)
    features = build_features(load, load.index)
    model = GradientBoostingModel(SMALL).fit(features, load)
    assert len(model.predict(features)) == len(load)
    with pytest.raises(ValueError, match="expected the fitted feature columns"):
        model.predict(features.drop(columns="lag_7d"))


def test_a_series_too_short_to_train_and_hold_out_is_refused() -> None:
    load = synthetic_load(weeks=5)
    assert holdout_period(load, STEP, 1)[0] == pd.Timestamp("2024-04-01")
    with pytest.raises(ForecastInputError, match=f"load_kw: expected at least {MIN_TRAINING_DAYS + 14} days"):
        holdout_period(load, STEP, 2)


def test_a_partial_last_day_is_not_held_out() -> None:
    load = synthetic_load(weeks=6)[:-10]
    assert holdout_period(load, STEP, 1) == (pd.Timestamp("2024-04-07"), pd.Timestamp("2024-04-14"))
