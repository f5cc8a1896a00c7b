"""analytics: aggregates of meter readings and the query API behind /api/v1/analytics.

A POST is a reading event (Trigger analytics-readings, KafkaSource gateways-analytics): its meter
readings are folded into the per meter, feeder and region aggregates of the `analytics` database
(200; 400 for bad data, dead-lettered at once; 503 when the database, Redis or memcached is
unavailable, retried).
A GET under /api/v1/analytics answers the buckets, latest reading or counters of one meter, feeder or
region. On SIGTERM the write-behind counters are flushed before the server stops (shared/shutdown.py).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.analytics.api import PREFIX
from shared.analytics.latest import CacheUnavailable
from shared.analytics.wiring import analytics
from shared.config import Settings
from shared.function import function_handler
from shared.http import cloudevent_endpoint
from shared.shutdown import BeforeSigterm

SOURCE = "/smartgrid/functions/analytics"
settings = Settings.from_env()
parts = analytics(settings)
endpoint = cloudevent_endpoint(parts.aggregate, settings.max_event_bytes, unavailable=(CacheUnavailable,))
serve = function_handler(settings, SOURCE, events=endpoint, api=parts.api, api_prefix=PREFIX)
flush_on_sigterm = BeforeSigterm(parts.counters.close)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Aggregate the readings of one event, or answer one request of the analytics API."""
    flush_on_sigterm.arm()
    return await serve(request)
