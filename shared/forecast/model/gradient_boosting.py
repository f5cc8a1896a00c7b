"""The gradient-boosting load model: scikit-learn's HistGradientBoostingRegressor on a feature frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Self

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class BoostingSettings:
    """Hyper-parameters of the regressor (absolute-error loss: the model is judged on MAE) and its threads.

    One OpenMP thread by default: on a busy or CPU-limited machine more threads spin at their
    barriers and fitting a year of quarter hours takes a minute instead of two seconds.
    """

    max_iter: int = 400
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    loss: str = "absolute_error"
    random_state: int = 0
    threads: int = 1


class GradientBoostingModel:
    """Fits the load from a feature frame and predicts it for new rows of the same columns."""

    def __init__(self, settings: BoostingSettings = BoostingSettings()) -> None:
        self.settings = settings
        self.columns: list[str] = []
        parameters = asdict(settings)
        self._threads = parameters.pop("threads")
        self._regressor = HistGradientBoostingRegressor(early_stopping=False, **parameters)

    def fit(self, features: pd.DataFrame, target: pd.Series) -> Self:
        """Fit on the rows whose target is known; NaN features are allowed (the trees route them)."""
        known = target.notna().to_numpy()
        if not known.any():
            raise ValueError("expected training rows with a known load, found none")
        self.columns = list(features.columns)
        with threadpool_limits(self._threads, user_api="openmp"):
            self._regressor.fit(features.to_numpy(dtype=float)[known], target.to_numpy(dtype=float)[known])
        return self

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """The predicted load for each row of `features`, which must have the columns it was fitted on."""
        if list(features.columns) != self.columns:
            raise ValueError(f"expected the fitted feature columns {self.columns}, found {list(features.columns)}")
        with threadpool_limits(self._threads, user_api="openmp"):
            predicted = self._regressor.predict(features.to_numpy(dtype=float))
        return pd.Series(predicted, index=features.index, name="forecast")
