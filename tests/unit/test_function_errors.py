"""How a function's failures become HTTP statuses (the broker retries 5xx, dead-letters 4xx)."""

from __future__ import annotations

import orjson
import psycopg
import pytest
from psycopg import errors
from starlette.requests import Request

from shared.cloudevents import CloudEvent, new_event, to_http_binary
from shared.http import cloudevent_endpoint
from shared.sink import SinkRejected, SinkUnavailable
from shared.validation.catalogue import UnknownEventType
from shared.validation.validators import InvalidData


async def call(handle, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict]:
    """Call the endpoint wrapping `handle` as functions-framework would."""
    scope = {"type": "http", "method": method, "path": "/", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    response = await cloudevent_endpoint(handle, max_event_bytes=1000)(Request(scope, receive))
    return response.status_code, orjson.loads(response.body)


def raising(error: BaseException):
    async def handle(_event: CloudEvent) -> dict:
        raise error
    return handle


EVENT = new_event("com.smartgrid.sensor.reading", "/t", "e-1", {"device_id": "d"})


@pytest.mark.parametrize(
    ("error", "status", "field"),
    [
        (InvalidData("voltage_v.l1", "expected a number"), 400, "data.voltage_v.l1"),
        (UnknownEventType("com.example.other"), 400, "type"),
        (psycopg.OperationalError("server closed the connection"), 503, None),
        (errors.CheckViolation("violates check constraint"), 422, None),
        (SinkUnavailable("broker down"), 503, None),
        (SinkRejected("refused"), 500, None),
    ],
)
async def test_failures_map_to_statuses(error: BaseException, status: int, field: str | None) -> None:
    headers, body = to_http_binary(EVENT)
    code, answer = await call(raising(error), body, headers)
    assert code == status
    assert answer.get("field") == field
    assert answer["message"]


async def test_success_probe_bad_event_and_oversize() -> None:
    async def handle(event: CloudEvent) -> dict:
        return {"stored": event.id}

    headers, body = to_http_binary(EVENT)
    assert await call(handle, body, headers) == (200, {"stored": "e-1"})
    assert await call(handle, b"", {}, method="GET") == (200, {"status": "ok"})
    code, answer = await call(handle, b"{}", {"content-type": "application/json"})
    assert (code, answer["field"]) == (400, "specversion")
    code, answer = await call(handle, b"x" * 1001, headers)
    assert (code, answer["field"]) == (413, "body")
