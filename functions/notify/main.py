"""notify: the Trigger subscriber for alert events (`com.smartgrid.alert.*`) and the PingSource's tick.

Notifies each alert event's recipients through the channels of its routes (SMARTGRID_CHANNELS_FILE),
with failover, suppression, rate limits, digests and escalations kept in Redis; records every
attempt in the `smartgrid` database and emits `com.smartgrid.notification.sent` / `.failed`.
200 when every recipient was served; 400 for a bad event (dead-lettered at once); 503 when every
channel failed for a recipient, or Redis or the database is unavailable (the broker redelivers;
nothing delivered is sent twice).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.function import function_handler
from shared.http import cloudevent_endpoint
from shared.notify.notifier import NotificationsUndelivered, Notifier
from shared.validation.catalogue import Catalogue

settings = Settings.from_env()
notifier = Notifier.from_settings(settings, Catalogue.load())
endpoint = cloudevent_endpoint(notifier.handle, settings.max_event_bytes, unavailable=(NotificationsUndelivered,))
serve = function_handler(settings, "/smartgrid/functions/notify", events=endpoint)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Notify the recipients of one alert event."""
    return await serve(request)
