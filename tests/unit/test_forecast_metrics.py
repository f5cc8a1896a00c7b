"""Forecast metrics: MAE, RMSE, MAPE skipping zero actuals, skill against a baseline."""

from __future__ import annotations

import math

import pytest

from shared.forecast.metrics import Scores, mae, mape, rmse, scores, skill


def test_mae_and_rmse_of_known_errors() -> None:
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_mape_skips_zero_actuals_and_is_in_percent() -> None:
    assert mape([0, 2, 4], [1, 3, 3]) == pytest.approx(37.5)
    assert math.isnan(mape([0, 0], [1, 2]))


def test_skill_compares_mae_with_the_baseline() -> None:
    assert skill(1.0, 2.0) == pytest.approx(0.5)
    assert skill(3.0, 2.0) == pytest.approx(-0.5)
    assert math.isnan(skill(1.0, 0.0))


def test_scores_bundle_the_three_metrics() -> None:
    expected = Scores(mae=1.0, rmse=pytest.approx(math.sqrt(5 / 3)), mape=pytest.approx(100 * (1 + 2 / 3) / 3))
    assert scores([1, 2, 3], [2, 2, 5]) == expected


def test_mismatched_or_empty_series_are_refused() -> None:
    with pytest.raises(ValueError, match="equally long"):
        mae([1, 2], [1])
    with pytest.raises(ValueError, match="non-empty"):
        rmse([], [])
