"""A Downstream of real HTTP calls to a local aiohttp server that fails, stops and recovers."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from starlette.requests import Request

from shared.cloudevents import CloudEvent, new_event, to_http_binary
from shared.http import cloudevent_endpoint
from shared.resilience import (
    BreakerPolicy,
    CircuitOpen,
    CircuitState,
    Downstream,
    RetryPolicy,
    retryable_status,
)

pytestmark = pytest.mark.integration

RECOVERY_S = 0.3
RETRY = RetryPolicy(attempts=2, initial_delay_s=0.001, base=2.0, max_delay_s=0.005)
BREAKER = BreakerPolicy(failure_threshold=5, recovery_timeout_s=RECOVERY_S, success_threshold=2)


class HttpStatusError(Exception):
    """Raised for an answer other than 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"expected a 2xx answer, found {status}")
        self.status = status


def is_transient(error: BaseException) -> bool:
    """Connection failures and the statuses Knative retries."""
    if isinstance(error, HttpStatusError):
        return retryable_status(error.status)
    return isinstance(error, aiohttp.ClientConnectionError)


class Backend:
    """A local HTTP server answering `status` to every GET and counting the requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.status = 200
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=self.status, text="ok" if self.status == 200 else "unavailable")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server = Backend(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        yield client


def downstream() -> Downstream:
    return Downstream(f"webhook:test-{uuid.uuid4().hex[:8]}", retry=RETRY, breaker=BREAKER, is_transient=is_transient)


async def get(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        if not 200 <= response.status < 300:
            raise HttpStatusError(response.status)
        return await response.text()


async def fail_until_open(target: Downstream, session: aiohttp.ClientSession, url: str) -> list[BaseException]:
    """Call until the breaker opens; the errors of the calls it took."""
    errors = []
    while target.state is CircuitState.CLOSED:
        with pytest.raises(Exception) as raised:
            await target.call(lambda: get(session, url), what="GET")
        errors.append(raised.value)
    return errors


async def test_503s_open_the_breaker_which_rejects_fast_then_a_probe_closes_it(
    backend: Backend, session: aiohttp.ClientSession
) -> None:
    target = downstream()
    backend.status = 503
    errors = await fail_until_open(target, session, backend.url)
    assert [getattr(error, "status", None) for error in errors] == [503] * 5
    assert backend.requests == 5 * RETRY.attempts

    started = time.monotonic()
    for _ in range(50):
        with pytest.raises(CircuitOpen, match=target.name):
            await target.call(lambda: get(session, backend.url))
    assert time.monotonic() - started < 0.1
    assert backend.requests == 5 * RETRY.attempts

    backend.status = 200
    await asyncio.sleep(RECOVERY_S)
    assert await target.call(lambda: get(session, backend.url)) == "ok"
    assert target.state is CircuitState.HALF_OPEN
    assert await target.call(lambda: get(session, backend.url)) == "ok"
    assert target.state is CircuitState.CLOSED


async def test_a_stopped_server_opens_the_breaker_until_it_is_back(session: aiohttp.ClientSession) -> None:
    stopped = Backend(free_port())
    target = downstream()
    errors = await fail_until_open(target, session, stopped.url)
    assert len(errors) == 5 and all(isinstance(error, aiohttp.ClientConnectionError) for error in errors)
    await stopped.start()
    try:
        with pytest.raises(CircuitOpen):
            await target.call(lambda: get(session, stopped.url))
        await asyncio.sleep(RECOVERY_S)
        for _ in range(BREAKER.success_threshold):
            assert await target.call(lambda: get(session, stopped.url)) == "ok"
        assert target.state is CircuitState.CLOSED and stopped.requests == BREAKER.success_threshold
    finally:
        await stopped.stop()


async def test_permanent_answers_are_not_retried_and_never_open_the_breaker(
    backend: Backend, session: aiohttp.ClientSession
) -> None:
    target = downstream()
    backend.status = 400
    for _ in range(3 * BREAKER.failure_threshold):
        with pytest.raises(HttpStatusError):
            await target.call(lambda: get(session, backend.url))
    assert target.state is CircuitState.CLOSED
    assert backend.requests == 3 * BREAKER.failure_threshold


async def request(endpoint, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    """Call a functions-framework endpoint with one request: (status, content type, body)."""
    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()]}

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    response = await endpoint(Request(scope, receive))
    return response.status_code, response.headers["content-type"], response.body


async def test_a_function_answers_503_while_the_breaker_is_open_and_exports_it_on_metrics(
    backend: Backend, session: aiohttp.ClientSession
) -> None:
    target = downstream()

    async def handle(event: CloudEvent) -> dict:
        return {"answer": await target.call(lambda: get(session, backend.url))}

    endpoint = cloudevent_endpoint(handle, max_event_bytes=10_000)
    headers, body = to_http_binary(new_event("com.smartgrid.sensor.reading", "/t", "e-1", {"device_id": "d"}))
    backend.status = 503
    await fail_until_open(target, session, backend.url)

    status, _, answer = await request(endpoint, "POST", "/", headers, body)
    error = orjson.loads(answer)
    assert status == 503 and error["error"] == "downstream unavailable" and error["event"] == "e-1"
    assert error["downstream"] == target.name and target.name in error["message"]

    status, content_type, metrics = await request(endpoint, "GET", "/metrics", {}, b"")
    assert status == 200 and content_type.startswith("text/plain")
    assert f'smartgrid_circuit_breaker_state{{downstream="{target.name}"}} 1.0' in metrics.decode()
    assert f'smartgrid_outbound_calls_total{{downstream="{target.name}",outcome="rejected"}} 1.0' in metrics.decode()
    assert await request(endpoint, "GET", "/", {}, b"") == (200, "application/json", b'{"status":"ok"}')
