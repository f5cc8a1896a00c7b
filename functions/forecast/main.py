"""forecast: day-ahead load forecasts per feeder and region, and the API behind /api/v1/forecasts.

A POST is a ping (`dev.knative.sources.ping`) whose data names the job: `{"job": "train"}`
(PingSource forecast-train) trains a new model version of every feeder and region with enough
history; `{"job": "forecast"}` (PingSource forecast-issue) issues the next UTC day with each
latest model, stores it and emits `com.smartgrid.forecast.issued` per entity to the broker.
200 with what was done (entities skipped are listed with the reason); 400 for another event type
or job (field `data.job`); 503 when the database or the broker is unavailable (the ping is retried).
A GET under /api/v1/forecasts answers the stored forecasts and model versions (shared/forecast/service/api.py).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.auth.policy import FORECAST_JOB
from shared.config import Settings
from shared.forecast.service.api import PREFIX
from shared.forecast.service.wiring import forecasting
from shared.function import function_handler
from shared.http import cloudevent_endpoint

SOURCE = "/smartgrid/functions/forecast"
settings = Settings.from_env()
parts = forecasting(settings, source=SOURCE)
endpoint = cloudevent_endpoint(parts.jobs.run, settings.max_event_bytes)
serve = function_handler(settings, SOURCE, events=endpoint, api=parts.api, api_prefix=PREFIX, delivery=FORECAST_JOB)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Run the job of one ping (its PingSource's delivery or an admin's), or answer one request of the API."""
    return await serve(request)
