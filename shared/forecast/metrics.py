"""Forecast error metrics: MAE, RMSE, MAPE (zero actuals skipped) and skill against a baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Values = npt.ArrayLike


@dataclass(frozen=True)
class Scores:
    """The errors of one forecast over the same values: MAE and RMSE in the load's unit, MAPE in %."""

    mae: float
    rmse: float
    mape: float


def mae(actual: Values, predicted: Values) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(_errors(actual, predicted))))


def rmse(actual: Values, predicted: Values) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean(np.square(_errors(actual, predicted)))))


def mape(actual: Values, predicted: Values) -> float:
    """Mean absolute percentage error in %, over the non-zero actual values (NaN when all are zero)."""
    actual = np.asarray(actual, dtype=float)
    errors = _errors(actual, predicted)
    nonzero = actual != 0
    if not nonzero.any():
        return float("nan")
    return float(100 * np.mean(np.abs(errors[nonzero] / actual[nonzero])))


def skill(model_mae: float, baseline_mae: float) -> float:
    """1 - MAE of the model / MAE of the baseline: above 0 the model is better (NaN for a perfect baseline)."""
    if baseline_mae == 0:
        return float("nan")
    return 1 - model_mae / baseline_mae


def scores(actual: Values, predicted: Values) -> Scores:
    """MAE, RMSE and MAPE of `predicted` against `actual`."""
    return Scores(mae(actual, predicted), rmse(actual, predicted), mape(actual, predicted))


def _errors(actual: Values, predicted: Values) -> np.ndarray:
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"expected two equally long, non-empty series, found {actual.shape} and {predicted.shape}")
    return predicted - actual
