"""ingest: the device-facing endpoint.

CloudEvents in binary, structured or batch mode are checked against the event catalogue;
valid ones go to the broker (K_SINK) keyed by device, invalid ones are answered 400 with the
event and field named. 202 only once the broker took every valid event; 503 to retry.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.config import Settings
from shared.http import circuit_open, json_error, probe
from shared.ingest import Ingestor
from shared.resilience import CircuitOpen, Downstreams
from shared.sink import EventSink, SinkUnavailable
from shared.validation.catalogue import Catalogue

settings = Settings.from_env()
ingestor = Ingestor(Catalogue.load(), EventSink(settings.require_sink(), Downstreams.from_settings(settings)))


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Check and forward the request's events."""
    answer = probe(request)
    if answer is not None:
        return answer
    body = await request.body()
    if len(body) > settings.max_event_bytes:
        return json_error(400, "event too large", f"expected at most {settings.max_event_bytes} bytes, "
                          f"found {len(body)}", field="body")
    try:
        report = await ingestor.ingest_http(request.headers, body)
    except SinkUnavailable as error:
        return json_error(503, "broker unavailable", str(error))
    except CircuitOpen as error:
        return circuit_open(error)
    return JSONResponse(report.to_dict(), status_code=report.status)
