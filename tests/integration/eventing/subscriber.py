"""A test subscriber: an HTTP server that records the CloudEvents it receives and answers
as each test scripts it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from shared.cloudevents import CloudEvent, from_http

Answer = Callable[["Received"], Awaitable[web.Response] | web.Response]


@dataclass(frozen=True)
class Received:
    """One delivery as the subscriber saw it."""

    path: str
    event: CloudEvent
    at: float
    attempt: int


@dataclass
class Subscriber:
    """Records deliveries per path; `answers[path]` decides the response (default 200)."""

    answers: dict[str, Answer] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/{path:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def at(self, path: str) -> list[Received]:
        """Deliveries received on `path` (without the leading slash)."""
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        """Wait until `path` received at least `count` deliveries; return them."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.at(path)) >= count), timeout)
        return self.at(path)

    async def _receive(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        event = from_http(request.headers, await request.read())
        attempt = 1 + sum(1 for r in self.received if r.path == path and r.event.id == event.id)
        received = Received(path, event, time.monotonic(), attempt)
        self.received.append(received)
        async with self._arrived:
            self._arrived.notify_all()
        answer = self.answers.get(path)
        if answer is None:
            return web.Response(status=200)
        response = answer(received)
        return await response if asyncio.iscoroutine(response) else response
