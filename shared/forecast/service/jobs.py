"""The forecast function's jobs, one per PingSource: `train` every model, `forecast` (issue) the next day.

`train` fits a new model version for every feeder and region with 15-minute aggregates and enough
history (SMARTGRID_FORECAST_MIN_HISTORY_DAYS, the validation week included; at most the last
MAX_HISTORY_DAYS are read); the others are skipped and listed with the reason. A version is trained
at the ping's time: a redelivered ping (same `time`) answers the versions it made (`repeated`). `forecast` issues,
with each entity's latest version, the UTC day after the ping's time: its 96 quarters and the
seasonal-naive baseline are upserted in `forecasts` and emitted as one `com.smartgrid.forecast.issued`
event per entity. A redelivered ping (same `time`) stores and emits the same again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from shared.cloudevents import PING_EVENT_TYPE, CloudEvent, InvalidEvent
from shared.forecast.errors import ForecastInputError
from shared.forecast.series import DAY
from shared.forecast.service.entity import Entity
from shared.forecast.service.events import forecast_event
from shared.forecast.service.history import HistoryStore
from shared.forecast.service.issued import ForecastStore
from shared.forecast.service.issuing import HISTORY_DAYS, issue
from shared.forecast.service.models import ModelStore
from shared.forecast.service.training import TrainingOptions, fit, loads
from shared.forecast.service.values import finite, utc
from shared.resilience import Downstream
from shared.sink import EventSink
from shared.weather.collector import tick_time

log = logging.getLogger("smartgrid.forecast")

JOBS = ("train", "forecast")
MAX_HISTORY_DAYS = 365


class ForecastJobs:
    """Runs the job a ping names; database calls go through its downstream (retries, breaker)."""

    def __init__(self, history: HistoryStore, models: ModelStore, forecasts: ForecastStore, sink: EventSink,
                 database: Downstream, options: TrainingOptions, source: str) -> None:
        self._history = history
        self._models = models
        self._forecasts = forecasts
        self._sink = sink
        self._database = database
        self._options = options
        self._source = source

    async def run(self, ping: CloudEvent) -> dict[str, Any]:
        """Run the job of one ping (`data.job`: train or forecast) at the ping's time."""
        if ping.type != PING_EVENT_TYPE:
            raise InvalidEvent("type", f"expected '{PING_EVENT_TYPE}', found '{ping.type}'")
        job = job_of(ping)
        now = tick_time(ping)
        return await (self.train(now) if job == "train" else self.forecast(now))

    async def train(self, now: datetime) -> dict[str, Any]:
        """Train a new model version of every feeder and region with enough history."""
        trained, skipped = [], []
        start = now - timedelta(days=MAX_HISTORY_DAYS)
        for entity in await self._database.call(self._history.entities, what="list feeders and regions"):
            done = await self._database.call(lambda: self._models.trained_at(entity, now),
                                             what=f"models of {entity}")
            if done is not None:
                trained.append(described(entity, version=done, repeated=True))
                continue
            load = await self._database.call(lambda: self._history.load(entity, start, now), what=f"load of {entity}")
            weather = await self._weather(entity, start, now)
            try:
                model = await asyncio.to_thread(fit, load, weather, self._options)
            except ForecastInputError as error:
                log.warning("%s: insufficient history, no model trained: %s", entity, error)
                skipped.append(described(entity, reason=f"insufficient history: {error}"))
                continue
            version = await self._database.call(lambda: self._models.add(entity, model, now),
                                                what=f"store the model of {entity}")
            evaluation = model.evaluation
            log.info("%s: model version %d, validation MAE %.3f kW (baseline %.3f kW)", entity, version,
                     evaluation.model.mae, evaluation.baseline.mae)
            trained.append(described(entity, version=version, model_mae_kw=evaluation.model.mae,
                                     baseline_mae_kw=evaluation.baseline.mae, skill=finite(evaluation.skill)))
        return {"job": "train", "trained": trained, "skipped": skipped}

    async def forecast(self, now: datetime) -> dict[str, Any]:
        """Issue the UTC day after `now` for every entity with a model: store it, then emit its events."""
        day = pd.Timestamp(now).tz_convert(None).floor(DAY) + DAY
        start = day - HISTORY_DAYS * DAY
        issued, skipped, events = [], [], []
        for entity in await self._database.call(self._models.modelled, what="list the modelled entities"):
            version, features, model = await self._database.call(lambda: self._models.latest(entity),
                                                                 what=f"latest model of {entity}")
            load = await self._database.call(lambda: self._history.load(entity, utc(start), utc(day)),
                                             what=f"load of {entity}")
            weather = await self._weather(entity, utc(start - DAY), utc(day))
            try:
                forecast = await asyncio.to_thread(lambda: issue(loads(model), features, load, weather, day))
            except ForecastInputError as error:
                log.warning("%s: no forecast issued for %s: %s", entity, f"{day:%Y-%m-%d}", error)
                skipped.append(described(entity, reason=str(error)))
                continue
            await self._database.call(lambda: self._forecasts.upsert(entity, forecast, version, now),
                                      what=f"store the forecast of {entity}")
            events.append(forecast_event(entity, day, forecast, version, now, self._source))
            issued.append(described(entity, model_version=version))
        await self._sink.send_all(events)
        return {"job": "forecast", "day": f"{day:%Y-%m-%d}", "issued": issued, "skipped": skipped}

    async def _weather(self, entity: Entity, start: datetime, end: datetime) -> pd.DataFrame:
        """The observations of the entity's region in [start, end)."""
        region = await self._database.call(lambda: self._history.region(entity), what=f"region of {entity}")
        return await self._database.call(lambda: self._history.weather(region, start, end),
                                         what=f"weather of {entity}")


def job_of(ping: CloudEvent) -> str:
    """The job a ping's data names; raises InvalidEvent(`data.job`) for anything else."""
    data = ping.json()
    job = data.get("job") if isinstance(data, dict) else None
    if job not in JOBS:
        raise InvalidEvent("data.job", f"expected one of {', '.join(JOBS)}, found {job!r}")
    return job


def described(entity: Entity, **details: Any) -> dict[str, Any]:
    """An entity with details, as the jobs answer them."""
    return {"level": entity.level, "entity_id": entity.entity_id, **details}
