"""deadletter: the dead-letter sink of every Trigger and KafkaSource.

Stores each event with its `knativeerror*` extensions in the `smartgrid` database, where
`smartgrid dlq list` shows it and `smartgrid dlq replay` sends it to the broker again.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.cloudevents import CloudEvent
from shared.config import Settings
from shared.deadletters import DeadLetterStore
from shared.function import function_handler
from shared.http import cloudevent_endpoint
from shared.resilience import Downstreams
from shared.stores.postgres import Database, is_transient

settings = Settings.from_env()
dead_letters = DeadLetterStore(Database(settings.dsn("smartgrid"), max_size=2))
database = Downstreams.from_settings(settings).get("postgres:smartgrid", is_transient)


async def keep(event: CloudEvent) -> dict[str, int | None]:
    """Store one dead letter (retried, behind the database's circuit breaker)."""
    return {"stored": await database.call(lambda: dead_letters.save(event), what=f"store dead letter {event.id}")}


endpoint = cloudevent_endpoint(keep, settings.max_event_bytes)
serve = function_handler(settings, "/smartgrid/functions/deadletter", events=endpoint)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Store the dead letter of one event."""
    return await serve(request)
