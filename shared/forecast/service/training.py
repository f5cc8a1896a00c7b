"""Training one entity's model: validated on its last week beside the seasonal-naive baseline, then refitted.

The model is fitted on all but the last whole week of the history and both it and the seasonal
naive baseline are scored on day-ahead forecasts of that week (shared/forecast/evaluation.py);
the model served is then fitted again on the whole history.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import joblib
import pandas as pd

from shared.forecast.day_ahead import train
from shared.forecast.defaults import DEFAULT_COUNTRY
from shared.forecast.evaluation import Evaluation, evaluate
from shared.forecast.features.lags import LAG_DAYS
from shared.forecast.model.gradient_boosting import (
    BoostingSettings,
    GradientBoostingModel,
)
from shared.forecast.service.entity import INTERVAL_MINUTES, STEP
from shared.forecast.service.weather import lagged_weather, observed_columns

VALIDATION_WEEKS = 1


@dataclass(frozen=True)
class TrainingOptions:
    """What a model is trained with: the history it needs (days, the validation week included) and more."""

    min_history_days: int = 21
    country: str = DEFAULT_COUNTRY
    boosting: BoostingSettings = BoostingSettings()

    @property
    def min_training_days(self) -> int:
        """Days before the validation week."""
        return self.min_history_days - 7 * VALIDATION_WEEKS


@dataclass(frozen=True)
class TrainedModel:
    """A refitted model (joblib bytes), its validation, the features it takes and where its history ends."""

    evaluation: Evaluation
    training_end: pd.Timestamp
    features: dict[str, Any]
    model: bytes


def fit(load: pd.Series, observed_weather: pd.DataFrame, options: TrainingOptions) -> TrainedModel:
    """Validate and refit a model on `load` (regular, every 15 minutes); raises ForecastInputError when it cannot."""
    columns = observed_columns(observed_weather)
    weather = lagged_weather(observed_weather, columns, load.index) if len(load) else None
    evaluation = evaluate(load, STEP, holdout_weeks=VALIDATION_WEEKS, country=options.country, weather=weather,
                          settings=options.boosting, min_training_days=options.min_training_days)
    model = train(load, country=options.country, weather=weather, settings=options.boosting)
    features = {
        "interval_minutes": INTERVAL_MINUTES,
        "country": options.country,
        "lag_days": list(LAG_DAYS),
        "weather_columns": columns,
        "weather": "observed one day earlier",
        "boosting": asdict(options.boosting),
    }
    return TrainedModel(evaluation, load.last_valid_index() + STEP, features, dumps(model))


def dumps(model: GradientBoostingModel) -> bytes:
    """The model serialized with joblib."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def loads(data: bytes) -> GradientBoostingModel:
    """A model serialized by `dumps` (only ever read from the platform's own database)."""
    return joblib.load(io.BytesIO(data))
