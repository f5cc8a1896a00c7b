"""alerts: the alert API behind /api/v1/alerts (list, one alert, history, acknowledge, clear).

An operator's acknowledgement or clear is stored in the `smartgrid` database, applied to the rule
state in Redis, and emitted as `com.smartgrid.alert.acknowledged` / `.cleared` to the broker.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.alerting.api import AlertApi
from shared.alerting.wiring import alerting
from shared.config import Settings

settings = Settings.from_env()
parts = alerting(settings, source="/smartgrid/functions/alerts")
api = AlertApi(parts.alerts, parts.operations, database=parts.database)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Answer one request of the alert API."""
    return await api(request)
