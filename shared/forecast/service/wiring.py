"""The forecast function's objects, built from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import ConfigError, Settings
from shared.forecast.model.gradient_boosting import BoostingSettings
from shared.forecast.service.api import ForecastApi
from shared.forecast.service.history import HistoryStore
from shared.forecast.service.issued import ForecastStore
from shared.forecast.service.jobs import ForecastJobs
from shared.forecast.service.models import ModelStore
from shared.forecast.service.training import VALIDATION_WEEKS, TrainingOptions
from shared.resilience import Downstreams
from shared.sink import EventSink
from shared.stores import postgres
from shared.stores.postgres import Database


@dataclass(frozen=True)
class Forecasting:
    """The jobs the pings run and the API, over one pool on the `analytics` database."""

    jobs: ForecastJobs
    api: ForecastApi


def training_options(settings: Settings) -> TrainingOptions:
    """The training options of SMARTGRID_FORECAST_*; raises ConfigError for too short a history."""
    if settings.forecast_min_history_days <= 7 * VALIDATION_WEEKS:
        raise ConfigError(f"SMARTGRID_FORECAST_MIN_HISTORY_DAYS: expected more than {7 * VALIDATION_WEEKS} days "
                          f"(the validation week and days to train on), found {settings.forecast_min_history_days}")
    if settings.forecast_max_iter < 1:
        raise ConfigError(f"SMARTGRID_FORECAST_MAX_ITER: expected at least 1, found {settings.forecast_max_iter}")
    return TrainingOptions(settings.forecast_min_history_days,
                           boosting=BoostingSettings(max_iter=settings.forecast_max_iter))


def forecasting(settings: Settings, source: str) -> Forecasting:
    """Build the forecast objects; `source` is the CloudEvents source of the events emitted."""
    downstreams = Downstreams.from_settings(settings)
    database = downstreams.get("postgres:analytics", postgres.is_transient)
    pool = Database(settings.dsn("analytics"), max_size=2)
    models, forecasts = ModelStore(pool), ForecastStore(pool)
    sink = EventSink(settings.require_sink(), downstreams)
    jobs = ForecastJobs(HistoryStore(pool), models, forecasts, sink, database, training_options(settings), source)
    return Forecasting(jobs, ForecastApi(forecasts, models, database=database))
