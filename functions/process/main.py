"""process: the Trigger subscriber for reading events (and the gateways' KafkaSource sink).

Stores each reading once in the `smartgrid` database, evaluates the first anomaly rules and
emits `com.smartgrid.alert.raised` to the broker. 200 when stored; 400 for bad data (the
broker dead-letters it at once); 503 when the database or broker is unavailable (retried).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.http import cloudevent_endpoint
from shared.readings.processor import ReadingProcessor
from shared.readings.store import ReadingStore, prepare_connection
from shared.sink import EventSink
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from shared.validation.registry import RegistryClient

settings = Settings.from_env()
catalogue = Catalogue.load()
processor = ReadingProcessor(
    catalogue,
    ReadingStore(Database(settings.dsn("smartgrid"), configure=prepare_connection)),
    EventSink(settings.require_sink()),
    RegistryClient(settings.schema_registry_url).event_schema if settings.schema_registry_url else catalogue.by_id,
)
endpoint = cloudevent_endpoint(processor.process, settings.max_event_bytes)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Store the readings of one event."""
    return await endpoint(request)
