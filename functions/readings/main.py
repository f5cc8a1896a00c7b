"""readings: the readings API behind /api/v1/readings, owned by the readings (`smartgrid`) domain.

Answers the stored meter and sensor readings of a time range, page by page, in the catalogue's
shape (shared/readings/api.py); other services, such as `smartgrid analytics rebuild`, read the
readings here instead of from the `smartgrid` database.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.readings.api import readings_api

settings = Settings.from_env()
api = readings_api(settings)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Answer one request of the readings API."""
    return await api(request)
