"""detect: the rule engine. Trigger subscriber for reading events (and the PingSource's ping).

Evaluates the alert rules (SMARTGRID_RULES_FILE) over readings with state in Redis, stores each
alert change in the `smartgrid` database and emits `com.smartgrid.alert.<change>` to the broker.
200 when done; 400 for bad data (dead-lettered at once); 503 when Redis, the database or the
broker is unavailable (retried).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.alerting.wiring import alerting
from shared.config import Settings
from shared.function import function_handler
from shared.http import cloudevent_endpoint

settings = Settings.from_env()
parts = alerting(settings, source="/smartgrid/functions/detect")
endpoint = cloudevent_endpoint(parts.detector.detect, settings.max_event_bytes)
serve = function_handler(settings, "/smartgrid/functions/detect", events=endpoint)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Evaluate the rules on the readings of one event."""
    return await serve(request)
