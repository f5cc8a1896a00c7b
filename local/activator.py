"""Knative Serving's scale to zero, locally: an activator per function, and a stand-in for missing Services.

An Activator owns a function's stable public URL. The first request starts the function on a
private port (a cold start) and waits for it; every request is then proxied to it. Once no request
has been in flight or received for `idle_seconds`, the function is stopped (scaled to zero) and the
next request starts it again. Unlike Knative there is one instance at most and no concurrency limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from local import aio
from local.functions import Function
from local.servers.process import ManagedProcess, ServerStartError, free_port

log = logging.getLogger("smartgrid.serving")

# Headers of one connection, not of the request: never forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
# The client must add nothing the caller did not send.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# functions-framework serves with gunicorn's Uvicorn worker, which closes a connection idle for 2 s
# (gunicorn's keepalive): reusing one at that moment fails the request ("Server disconnected"). The
# proxy therefore retires its idle connections sooner.
_UPSTREAM_KEEPALIVE_S = 1.0


class Activator:
    """The public endpoint of one function: starts it on demand, proxies to it, stops it when idle."""

    def __init__(
        self,
        function: Function,
        sink: str,
        env: Mapping[str, str],
        log_dir: Path,
        idle_seconds: float,
        start_timeout: float = 30.0,
    ) -> None:
        self.function = function
        self.log_path = log_dir / f"{function.name}.log"
        self.url = ""
        self._sink = sink
        self._env = dict(env)
        self._idle_seconds = idle_seconds
        self._start_timeout = start_timeout
        self._lock = asyncio.Lock()
        self._process: ManagedProcess | None = None
        self._session: aiohttp.ClientSession | None = None
        self._upstream = ""
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port) and start the idle reaper; return the public URL."""
        app = web.Application(client_max_size=0)  # like Knative's activator, no body limit of its own
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner, self.url = await aio.serve(app, host, port)
        self._reaper = asyncio.create_task(self._reap(), name=f"reaper-{self.function.name}")
        return self.url

    def add_environment(self, extra: Mapping[str, str]) -> None:
        """Variables for the function's next start (set before the first request: nothing runs yet)."""
        self._env.update(extra)

    async def stop(self) -> None:
        """Stop listening, then stop the function if it runs."""
        if self._reaper is not None:
            self._reaper.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        async with self._lock:
            await self._stop_function()

    async def _handle(self, request: web.Request) -> web.Response:
        self._in_flight += 1
        self._last_activity = time.monotonic()
        try:
            try:
                await self._ensure_running()
            except (ServerStartError, OSError) as error:
                return self._error(503, f"function '{self.function.name}' did not start: {error}")
            return await self._proxy(request)
        finally:
            self._in_flight -= 1
            self._last_activity = time.monotonic()

    async def _ensure_running(self) -> None:
        """Start the function unless it runs; concurrent callers wait for the one start."""
        async with self._lock:
            if self._process is not None and self._process.running:
                return
            await self._stop_function()
            port = free_port()
            began = time.monotonic()
            # Held before it starts, so that `stop` ends it even if this request is cancelled meanwhile.
            self._process = self.function.process(port, self._sink, self._env, self.log_path)
            try:
                await asyncio.to_thread(self._process.start, port, timeout=self._start_timeout)
            except (ServerStartError, OSError):
                self._process = None
                raise
            self._upstream = f"http://127.0.0.1:{port}"
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=_UPSTREAM_KEEPALIVE_S),
                auto_decompress=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._start_timeout),
            )
            log.info("cold start %s %.2fs", self.function.name, time.monotonic() - began)

    async def _proxy(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
        try:
            async with self._session.request(
                request.method,
                URL(self._upstream + request.raw_path, encoded=True),
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                answer = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP)
                return web.Response(status=upstream.status, reason=upstream.reason, headers=answer, body=body)
        except aiohttp.ClientError as error:
            return self._error(502, f"function '{self.function.name}' did not answer: {error}; see {self.log_path}")

    def _error(self, status: int, message: str) -> web.Response:
        log.error("%s", message)
        return web.json_response(
            {"error": message, "function": self.function.name, "log": str(self.log_path)}, status=status
        )

    async def _reap(self) -> None:
        """Every tick, scale the function to zero once it has been idle for `idle_seconds`."""
        tick = min(1.0, max(0.05, self._idle_seconds / 4))
        while True:
            await asyncio.sleep(tick)
            if self._process is None or not self._idle():
                continue
            async with self._lock:
                if self._process is not None and self._idle():
                    await self._stop_function()
                    log.info("scaled to zero %s", self.function.name)

    def _idle(self) -> bool:
        return self._in_flight == 0 and time.monotonic() - self._last_activity >= self._idle_seconds

    async def _stop_function(self) -> None:
        """Stop the process (noting a crash) and close its client session; the caller holds the lock."""
        process, self._process = self._process, None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if process is None:
            return
        if process.process is not None and process.process.poll() is not None:
            log.warning("%s had exited with code %s; see %s", self.function.name, process.process.returncode, self.log_path)
        await asyncio.to_thread(process.stop)


class MissingServices:
    """Answers 503 with a JSON error under `/<name>/` for Knative Services that no function folder provides.

    Routing a ref to a missing Service here keeps its Trigger consuming, so each of its events is
    retried and then dead-lettered (or logged as dropped) instead of waiting unseen in Kafka.
    """

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> str:
        """Listen on a free port; return the base URL."""
        app = web.Application()
        app.router.add_route("*", "/{service}{tail:.*}", _missing_service)
        self._runner, self.url = await aio.serve(app, host, shutdown_timeout=1.0)
        return self.url

    def service_url(self, name: str) -> str:
        """The URL that stands in for the missing Service `name`."""
        return f"{self.url}/{name}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


async def _missing_service(request: web.Request) -> web.Response:
    service = request.match_info["service"]
    return web.json_response(
        {"error": f"Knative Service '{service}' has no function folder, so nothing serves it", "service": service},
        status=503,
    )
