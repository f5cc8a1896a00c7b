"""The `forecast_models` table: model versions per feeder and region, with their validation and features."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.forecast.service.entity import Entity
from shared.forecast.service.training import TrainedModel
from shared.forecast.service.values import finite, utc
from shared.stores.postgres import Database

# Two trainings of one entity at once would read the same last version: the second waits for the first.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('forecast_models'), hashtext(%s))"
_NEXT_VERSION = "SELECT coalesce(max(version), 0) + 1 FROM forecast_models WHERE level = %s AND entity_id = %s"
_INSERT = """
INSERT INTO forecast_models (level, entity_id, version, trained_at, training_start, training_end,
    validation_start, validation_end, training_values, validation_values, model_mae_kw, model_rmse_kw,
    model_mape_pct, baseline_mae_kw, baseline_rmse_kw, baseline_mape_pct, skill, training_seconds, features, model)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_LATEST = """
SELECT version, features, model FROM forecast_models WHERE level = %s AND entity_id = %s
ORDER BY version DESC LIMIT 1
"""
_TRAINED_AT = "SELECT version FROM forecast_models WHERE level = %s AND entity_id = %s AND trained_at = %s"
_MODELLED = "SELECT DISTINCT level, entity_id FROM forecast_models ORDER BY level, entity_id"
_VERSIONS = """
SELECT version, trained_at, training_start, training_end, validation_start, validation_end, training_values,
    validation_values, model_mae_kw, model_rmse_kw, model_mape_pct, baseline_mae_kw, baseline_rmse_kw,
    baseline_mape_pct, skill, training_seconds, features
FROM forecast_models WHERE level = %s AND entity_id = %s ORDER BY version
"""


class ModelStore:
    """Adds model versions (numbered 1, 2, ... per entity) and reads them back."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, entity: Entity, trained: TrainedModel, trained_at: datetime) -> int:
        """Store `trained` as the entity's next version; return its number (the one stored already when
        another call stored a version trained at the same time)."""
        e = trained.evaluation
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.execute(_LOCK, (f"{entity.level}:{entity.entity_id}",))
            await cursor.execute(_TRAINED_AT, (entity.level, entity.entity_id, trained_at))
            stored = await cursor.fetchone()
            if stored is not None:
                return stored[0]
            await cursor.execute(_NEXT_VERSION, (entity.level, entity.entity_id))
            (version,) = await cursor.fetchone()
            await cursor.execute(_INSERT, (
                entity.level, entity.entity_id, version, trained_at, utc(e.training_start), utc(trained.training_end),
                utc(e.holdout_start), utc(e.holdout_end), e.training_values, e.holdout_values, e.model.mae,
                e.model.rmse, finite(e.model.mape), e.baseline.mae, e.baseline.rmse, finite(e.baseline.mape),
                finite(e.skill), e.training_seconds, Jsonb(trained.features), trained.model,
            ))
        return version

    async def latest(self, entity: Entity) -> tuple[int, dict[str, Any], bytes] | None:
        """The newest version of the entity's model: its number, features and joblib bytes; None if none."""
        async with self._database.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(_LATEST, (entity.level, entity.entity_id))
            row = await cursor.fetchone()
        return (row[0], row[1], bytes(row[2])) if row else None

    async def trained_at(self, entity: Entity, moment: datetime) -> int | None:
        """The version trained at `moment` (by the same ping), None if none."""
        async with self._database.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(_TRAINED_AT, (entity.level, entity.entity_id, moment))
            row = await cursor.fetchone()
        return row[0] if row else None

    async def modelled(self) -> list[Entity]:
        """Every entity with at least one model."""
        async with self._database.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(_MODELLED)
            return [Entity(level, entity_id) for level, entity_id in await cursor.fetchall()]

    async def versions(self, entity: Entity) -> list[dict[str, Any]]:
        """Every version of the entity's model with its validation metrics, oldest first (no model bytes)."""
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_VERSIONS, (entity.level, entity.entity_id))
            return await cursor.fetchall()

