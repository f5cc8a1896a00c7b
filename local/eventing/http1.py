"""A lean keep-alive HTTP/1.1 client on httptools, for the data plane's one-event POSTs.

aiohttp's client costs more CPU per request than the rest of a delivery together; this one
writes one request head, parses the answer with httptools (llhttp) and keeps connections
open per host. Plain `http://` only: TLS destinations go through aiohttp (see delivery.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

Origin = tuple[str, int]


class HttpError(ConnectionError):
    """Raised when a connection failed or its answer was not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A status, lower-cased header names (the last of repeated ones wins), and the body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's requests go: the origin to connect to and the head's first lines."""

    origin: Origin
    head: bytes  # request line and Host header


@lru_cache(maxsize=1024)
def target(url: str) -> Target:
    """The target of an `http://` URL; raises ValueError for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected an http:// URL, found {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target((parts.hostname, port), f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode())


def request_head(where: Target, headers: Mapping[str, str], length: int) -> bytes:
    """The request head; raises ValueError when a header would break the framing."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = where.head + f"{lines}Content-Length: {length}\r\n\r\n".encode()
    if head.count(b"\n") != len(headers) + 4:
        raise ValueError("a header name or value holds a line break")
    return head


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"malformed HTTP answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._status and not self._framed():  # the body ran until the connection closed
            self.on_message_complete()
        self._fail(HttpError(f"connection closed before the answer ended{f': {exc}' if exc else ''}"))

    async def post(self, head: bytes, body: bytes) -> HttpResponse:
        """Write one request and wait for its whole answer."""
        assert self.transport is not None
        self.reusable = False
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(head + body)
        return await self._answer

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, response = self._answer, HttpResponse(self._status, self._headers, b"".join(self._body))
        self._answer, self._headers, self._body, self._status = None, {}, [], 0
        if response.status >= 200:
            self.reusable = self._parser.should_keep_alive() and self.transport is not None \
                and not self.transport.is_closing()
            if answer is not None and not answer.done():
                answer.set_result(response)
        else:
            self._answer = answer  # 1xx: the final answer follows

    def _framed(self) -> bool:
        return "content-length" in self._headers or "chunked" in self._headers.get("transfer-encoding", "")

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class HttpClient:
    """POSTs over pooled keep-alive connections, one request per connection at a time."""

    def __init__(self) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> HttpResponse:
        """POST `body`; raises HttpError, OSError, TimeoutError, or ValueError for a bad URL or header."""
        where = target(url)
        head = request_head(where, headers, len(body))
        async with asyncio.timeout(timeout_s):
            connection, reused = await self._acquire(where.origin)
            try:
                response = await connection.post(head, body)
            except HttpError:
                if not reused:
                    raise
                # a kept-alive connection the server had closed meanwhile: once more, on a new one
                connection, _ = await self._acquire(where.origin, fresh=True)
                response = await connection.post(head, body)
            finally:
                self._release(where.origin, connection)
        return response

    def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                assert connection.transport is not None
                connection.transport.close()
        self._idle.clear()

    async def _acquire(self, origin: Origin, fresh: bool = False) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle and not fresh:
            connection = idle.pop()
            if connection.reusable:
                return connection, True
        _, connection = await asyncio.get_running_loop().create_connection(_Connection, *origin)
        return connection, False

    def _release(self, origin: Origin, connection: _Connection) -> None:
        if connection.reusable:
            self._idle.setdefault(origin, []).append(connection)
        elif connection.transport is not None:
            connection.transport.close()
