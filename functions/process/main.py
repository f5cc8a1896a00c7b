"""process: the Trigger subscriber for reading events (and the gateways' KafkaSource sink).

Stores each reading once in the `smartgrid` database (the alert rules run in `detect`). 200 when
stored; 400 for bad data (the broker dead-letters it at once); 503 when the database is
unavailable (retried).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.auth.wiring import gateway_check
from shared.config import Settings
from shared.function import function_handler
from shared.http import cloudevent_endpoint
from shared.readings.decoding import ReadingDecoder
from shared.readings.processor import ReadingProcessor
from shared.readings.store import ReadingStore, prepare_connection
from shared.resilience import Downstreams
from shared.stores.postgres import Database, is_transient
from shared.validation.catalogue import Catalogue
from shared.validation.registry import RegistryClient

settings = Settings.from_env()
downstreams = Downstreams.from_settings(settings)
catalogue = Catalogue.load()
processor = ReadingProcessor(
    ReadingDecoder(
        catalogue,
        RegistryClient(settings.schema_registry_url).event_schema if settings.schema_registry_url else catalogue.by_id,
        gateway_check(settings, downstreams),
    ),
    ReadingStore(Database(settings.dsn("smartgrid"), configure=prepare_connection)),
    database=downstreams.get("postgres:smartgrid", is_transient),
)
endpoint = cloudevent_endpoint(processor.process, settings.max_event_bytes)
serve = function_handler(settings, "/smartgrid/functions/process", events=endpoint)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Store the readings of one event."""
    return await serve(request)
