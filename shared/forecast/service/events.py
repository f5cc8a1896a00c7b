"""The `com.smartgrid.forecast.issued` event: one feeder's or region's day-ahead forecast, keyed by entity."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from shared.cloudevents import CloudEvent, new_event
from shared.forecast.service.entity import INTERVAL_MINUTES, Entity
from shared.forecast.service.values import finite

FORECAST_EVENT_TYPE = "com.smartgrid.forecast.issued"


def forecast_event(entity: Entity, day: pd.Timestamp, forecast: pd.DataFrame, model_version: int,
                   issued_at: datetime, source: str) -> CloudEvent:
    """The event of one issued day; a redelivered ping re-issues it with the same id."""
    day_text = f"{day:%Y-%m-%d}"
    data = {
        "entity_id": entity.entity_id,
        "level": entity.level,
        "day": day_text,
        "interval_minutes": INTERVAL_MINUTES,
        "model_version": model_version,
        "issued_at": int(issued_at.timestamp() * 1000),
        "forecast_kw": [float(value) for value in forecast["forecast"]],
        "baseline_kw": [finite(value) for value in forecast["seasonal_naive"]],
    }
    event_id = f"{entity.level}/{entity.entity_id}/{day_text}/v{model_version}/{data['issued_at']}"
    return new_event(FORECAST_EVENT_TYPE, source, event_id, data, partitionkey=entity.entity_id,
                     time=issued_at.isoformat().replace("+00:00", "Z"))
