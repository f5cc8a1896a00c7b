"""readings: the readings API behind /api/v1/readings, owned by the readings (`smartgrid`) domain.

Answers the stored meter and sensor readings of a time range, page by page, in the catalogue's
shape (shared/readings/api.py); other services, such as `smartgrid analytics rebuild`, read the
readings here instead of from the `smartgrid` database.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.function import function_handler
from shared.readings.api import PREFIX, readings_api

settings = Settings.from_env()
serve = function_handler(settings, "/smartgrid/functions/readings", api=readings_api(settings), api_prefix=PREFIX)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Answer one request of the readings API (an analyst's or admin's token)."""
    return await serve(request)
