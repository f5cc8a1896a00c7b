"""The HTTP side of a function: read the CloudEvent, run the domain code, answer.

Failures become JSON errors with the status Knative acts on: 400 for bad input (the
broker dead-letters it at once), 422 for data the database refuses, 503 when a
downstream is unavailable (the broker or device retries).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.cloudevents import CloudEvent, InvalidEvent, from_http
from shared.sink import SinkRejected, SinkUnavailable
from shared.stores.postgres import is_transient
from shared.validation.catalogue import UnknownEventType
from shared.validation.rejections import rejection
from shared.validation.validators import InvalidData

log = logging.getLogger("smartgrid.http")

EventHandler = Callable[[CloudEvent], Awaitable[dict[str, Any]]]


def json_error(status: int, error: str, message: str, **details: Any) -> JSONResponse:
    """A JSON error body naming what went wrong and, in `details`, where."""
    return JSONResponse({"error": error, "message": message, **details}, status_code=status)


def probe(request: Request) -> Response | None:
    """The answer to a readiness or liveness probe (any GET), or None for other requests."""
    return JSONResponse({"status": "ok"}) if request.method == "GET" else None


def cloudevent_endpoint(handle: EventHandler, max_event_bytes: int) -> Callable[[Request], Awaitable[Response]]:
    """Wrap `handle` into a functions-framework HTTP function: 200 with its JSON, or an error.

    A GET answers 200 `{"status": "ok"}`: the readiness and liveness probe.
    """

    async def endpoint(request: Request) -> Response:
        answer = probe(request)
        if answer is not None:
            return answer
        body = await request.body()
        if len(body) > max_event_bytes:
            return json_error(413, "event too large", f"expected at most {max_event_bytes} bytes, "
                              f"found {len(body)}", field="body")
        try:
            event = from_http(request.headers, body)
        except InvalidEvent as error:
            return JSONResponse(error.to_dict(), status_code=400)
        try:
            return JSONResponse(await handle(event))
        except (InvalidEvent, InvalidData, UnknownEventType) as error:
            return JSONResponse(rejection(error, event.id, event.type), status_code=400)
        except SinkUnavailable as error:
            log.warning("event %s: %s", event.id, error)
            return json_error(503, "broker unavailable", str(error), event=event.id)
        except SinkRejected as error:
            log.error("event %s: %s", event.id, error)
            return json_error(500, "emitted event refused", str(error), event=event.id)
        except psycopg.Error as error:
            if is_transient(error):
                log.warning("event %s: database unavailable: %s", event.id, error)
                return json_error(503, "database unavailable", str(error), event=event.id)
            log.error("event %s: database refused the data: %s", event.id, error)
            return json_error(422, "data refused by the database", str(error), event=event.id)

    return endpoint
