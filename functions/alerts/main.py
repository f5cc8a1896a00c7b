"""alerts: the alert API behind /api/v1/alerts (list, one alert, history, acknowledge, clear).

Every request needs a user's token (shared/auth/policy.py). An operator's acknowledgement or clear is stored in the `smartgrid` database, applied to the rule
state in Redis, and emitted as `com.smartgrid.alert.acknowledged` / `.cleared` to the broker.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.alerting.api import PREFIX, SOURCE, AlertApi
from shared.alerting.wiring import alerting
from shared.auth.wiring import audit_reporter
from shared.config import Settings
from shared.function import function_handler

settings = Settings.from_env()
parts = alerting(settings, source=SOURCE)
reporter = audit_reporter(settings, SOURCE)
api = AlertApi(parts.alerts, parts.operations, database=parts.database, audit=reporter)
serve = function_handler(settings, SOURCE, api=api, api_prefix=PREFIX, reporter=reporter)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Answer one request of the alert API (a viewer's token reads, an operator's acknowledges and clears)."""
    return await serve(request)
