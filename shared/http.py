"""The HTTP side of a function: read the CloudEvent, run the domain code, answer.

Failures become JSON errors with the status Knative acts on: 400 for bad input (the
broker dead-letters it at once), 422 for data the database refuses, 503 when a
downstream is unavailable or its circuit breaker open (the broker or device retries).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.cloudevents import CloudEvent, InvalidEvent, from_http
from shared.resilience import CircuitOpen
from shared.sink import SinkRejected, SinkUnavailable
from shared.stores.postgres import is_transient
from shared.stores.redis import StateConflict
from shared.stores.redis import is_transient as redis_transient
from shared.validation.catalogue import UnknownEventType
from shared.validation.rejections import rejection
from shared.validation.validators import InvalidData

log = logging.getLogger("smartgrid.http")

EventHandler = Callable[[CloudEvent], Awaitable[dict[str, Any]]]


def json_error(status: int, error: str, message: str, **details: Any) -> JSONResponse:
    """A JSON error body naming what went wrong and, in `details`, where."""
    return JSONResponse({"error": error, "message": message, **details}, status_code=status)


def circuit_open(error: CircuitOpen, **details: Any) -> JSONResponse:
    """The 503 of a call refused by an open circuit breaker, naming the downstream, so the sender retries later."""
    log.warning("%s", error)
    return json_error(503, "downstream unavailable", str(error), downstream=error.downstream, **details)


def probe(request: Request) -> Response | None:
    """The answer to a GET: the Prometheus metrics on /metrics, else a readiness or liveness probe; None otherwise."""
    if request.method != "GET":
        return None
    if request.url.path == "/metrics":
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    return JSONResponse({"status": "ok"})


def downstream_failure(error: Exception, **details: Any) -> Response | None:
    """The answer to a failed outbound call (503 unavailable, 500 refused event, 422 refused data); None
    for any other error."""
    if isinstance(error, CircuitOpen):
        return circuit_open(error, **details)
    if isinstance(error, SinkUnavailable | StateConflict) or (isinstance(error, RedisError) and redis_transient(error)):
        log.warning("%s: %s", details, error)
        return json_error(503, "downstream unavailable", str(error), **details)
    if isinstance(error, SinkRejected):
        log.error("%s: %s", details, error)
        return json_error(500, "emitted event refused", str(error), **details)
    if isinstance(error, psycopg.Error):
        if is_transient(error):
            log.warning("%s: database unavailable: %s", details, error)
            return json_error(503, "database unavailable", str(error), **details)
        log.error("%s: database refused the data: %s", details, error)
        return json_error(422, "data refused by the database", str(error), **details)
    return None


def cloudevent_endpoint(
    handle: EventHandler, max_event_bytes: int, *, unavailable: tuple[type[Exception], ...] = ()
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap `handle` into a functions-framework HTTP function: 200 with its JSON, or an error.

    A GET answers 200 `{"status": "ok"}` (the readiness and liveness probe), or the metrics on /metrics.
    The errors listed in `unavailable` (the function's own way of saying "not now") answer 503 too.
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
        except unavailable as error:
            log.warning("event %s: %s", event.id, error)
            return json_error(503, "downstream unavailable", str(error), event=event.id)
        except Exception as error:
            answer = downstream_failure(error, event=event.id)
            if answer is None:
                raise
            return answer

    return endpoint
