"""The forecast API behind `/api/v1/forecasts`: issued day-ahead forecasts and the model versions.

| method | path                                                  | answer                                     |
|--------|-------------------------------------------------------|--------------------------------------------|
| GET    | /api/v1/forecasts/{feeders,regions}/{id}?day=         | the day's quarters, model version, issued_at |
| GET    | /api/v1/forecasts/{feeders,regions}/{id}/models       | every model version with its validation    |

`day` is a UTC day YYYY-MM-DD (default: tomorrow); its quarters (`ts`, `forecast_kw`, `baseline_kw`)
come oldest first. Answers carry `Cache-Control: max-age=300`. Errors are JSON bodies naming the
parameter: 400 bad parameter, 404 unknown path or nothing stored, 405 other methods.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.forecast.service.entity import INTERVAL_MINUTES, Entity
from shared.forecast.service.issued import ForecastStore
from shared.forecast.service.models import ModelStore
from shared.http import downstream_failure, json_error
from shared.params import BadParameter
from shared.resilience import Downstream

PREFIX = "/api/v1/forecasts"
CACHE_CONTROL = "max-age=300"
_ROUTE = re.compile(rf"^{PREFIX}/(?P<level>feeders|regions)/(?P<id>[^/]+)(?P<models>/models)?/?$")


class ForecastApi:
    """Answers the forecast API's requests; reads go through the database's downstream (retries, breaker)."""

    def __init__(self, forecasts: ForecastStore, models: ModelStore, *, database: Downstream) -> None:
        self._forecasts = forecasts
        self._models = models
        self._database = database

    async def __call__(self, request: Request) -> Response:
        """Answer one request."""
        match = _ROUTE.match(request.url.path)
        if match is None:
            return json_error(404, "not found", f"expected {PREFIX}/{{feeders|regions}}/{{id}}[/models], "
                                                f"found {request.url.path}", field="path")
        if request.method != "GET":
            return json_error(405, "method not allowed", f"expected GET, found {request.method}", field="method")
        entity = Entity(match["level"].removesuffix("s"), match["id"])
        if match["models"]:
            return await self._answer(request, lambda: self._versions(entity))
        try:
            day = day_param(request.query_params, datetime.now(UTC).date() + timedelta(days=1))
        except BadParameter as error:
            return json_error(400, "bad request", str(error), field=error.field)
        return await self._answer(request, lambda: self._day(entity, day))

    async def _versions(self, entity: Entity) -> dict[str, Any] | None:
        versions = await self._models.versions(entity)
        return {"level": entity.level, "entity_id": entity.entity_id, "versions": versions} if versions else None

    async def _day(self, entity: Entity, day: date) -> dict[str, Any] | None:
        start = datetime.combine(day, time(), UTC)
        rows = await self._forecasts.day(entity, start, start + timedelta(days=1))
        if not rows:
            return None
        return {
            "level": entity.level,
            "entity_id": entity.entity_id,
            "day": day.isoformat(),
            "interval_minutes": INTERVAL_MINUTES,
            "model_version": rows[0]["model_version"],
            "issued_at": rows[0]["issued_at"],
            "quarters": [{"ts": r["ts"], "forecast_kw": r["forecast_kw"], "baseline_kw": r["baseline_kw"]}
                         for r in rows],
        }

    async def _answer(self, request: Request, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> Response:
        """The JSON of `read()`, 404 when it finds nothing, the downstream's error when the database fails."""
        try:
            body = await self._database.call(read, what="read forecasts")
        except Exception as error:
            answer = downstream_failure(error, path=request.url.path)
            if answer is None:
                raise
            return answer
        if body is None:
            return json_error(404, "not found", f"nothing stored at {request.url.path}", field="path")
        return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": CACHE_CONTROL})


def day_param(params: Any, default: date) -> date:
    """The UTC day of parameter `day` (YYYY-MM-DD), `default` when absent; raises BadParameter."""
    text = params.get("day")
    if text is None:
        return default
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadParameter("day", f"expected a day YYYY-MM-DD, found {text!r}")
