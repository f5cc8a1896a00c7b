"""A lean keep-alive HTTP/1.1 client on httptools, for plain `http://` hops (any method but HEAD).

Used by the local Knative data plane (its event POSTs, `HttpClient.post`) and the local API gateway
(its upstream hop, `HttpClient.request` with a head from `request_head`). aiohttp's client costs more
CPU per request than the rest of either's work together; this one writes the request in one go, parses
the answer with httptools (llhttp), keeps every header of the answer (repeated ones too, in order) and
pools connections per origin, one request at a time on each. A pooled connection idle for longer than
KEEPALIVE_S is closed rather than reused (the server may be closing it), and a request whose reused
connection closes before any byte of the answer is sent once more on a new connection (the server closed
it while idle; nothing was processed). TLS and HEAD (its answer's framing needs the request) go through
aiohttp in the callers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

Origin = tuple[str, int]
# Below the servers' own keep-alive (aiohttp's: 75 s), so a pooled connection is never reused just as
# the other end closes it.
KEEPALIVE_S = 15.0


class HttpError(ConnectionError):
    """The connection closed, or the answer was no HTTP/1.1, before the whole answer arrived."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A status, every header as sent (in order, repeated ones too), and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_dict(self) -> dict[str, str]:
        """The headers by lower-cased name; the last of repeated ones wins."""
        return {name.lower(): value for name, value in self.headers}


@lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[Origin, str, str] | None:
    """(origin, host[:port], path and query) of a plain `http://` URL; None for any other."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    return (parts.hostname, parts.port or 80), parts.netloc, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def request_head(method: str, target: str, host: str, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    """The request head; raises ValueError for HEAD or when a name or value would break the framing."""
    if method == "HEAD":
        raise ValueError("HEAD is not supported: its answer's framing needs the request")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    if text.count("\n") != len(lines) + 1:
        raise ValueError("a header name or value holds a line break")
    return text.encode("utf-8", "surrogateescape")  # the bytes aiohttp's server decoded


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.received = False  # any byte of the current request's answer
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpResponse] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"malformed HTTP answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._status and not self._framed():
            self.on_message_complete()  # an answer delimited by the connection's end
        self._fail(HttpError(f"connection closed before the answer ended{f': {exc}' if exc else ''}"))

    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        """Write one request; the future is its whole answer."""
        assert self.transport is not None
        self.reusable = self.received = False
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._answer

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = self._answer
        response = HttpResponse(self._status, self._headers, b"".join(self._body))
        self._headers, self._body, self._status = [], [], 0
        if response.status < 200:
            return  # 1xx: the final answer follows
        self._answer = None
        self.reusable = self._parser.should_keep_alive() and self.transport is not None \
            and not self.transport.is_closing()
        if answer is not None and not answer.done():
            answer.set_result(response)

    def _framed(self) -> bool:
        return any(n.lower() == "content-length" or n.lower() == "transfer-encoding" and "chunked" in v.lower()
                   for n, v in self._headers)

    def _fail(self, error: Exception) -> None:
        self.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class HttpClient:
    """Keep-alive connections per origin, one request per connection at a time."""

    def __init__(self, connect_timeout_s: float | None = None) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._connect_timeout_s = connect_timeout_s

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> HttpResponse:
        """POST `body` to an `http://` URL, all within `timeout_s`; raises HttpError, OSError, TimeoutError,
        or ValueError for a bad URL or header."""
        where = split_url(url)
        if where is None:
            raise ValueError(f"expected an http:// URL, found {url!r}")
        origin, host, target = where
        head = request_head("POST", target, host, headers.items(), len(body))
        async with asyncio.timeout(timeout_s):
            return await self.request(origin, head, body)

    async def request(self, origin: Origin, head: bytes, body: bytes) -> HttpResponse:
        """Send a request (its head already framed, Content-Length included) and wait for the whole answer.
        Raises OSError when the connection cannot be made (a connect failure), HttpError."""
        connection, reused = await self._acquire(origin)
        try:
            try:
                response = await connection.send(head + body)
            except HttpError:
                if not reused or connection.received:
                    raise
                connection, _ = await self._acquire(origin, fresh=True)
                response = await connection.send(head + body)
        except BaseException:
            connection.close()
            raise
        self._release(origin, connection)
        return response

    def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _acquire(self, origin: Origin, fresh: bool = False) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle and not fresh:
            connection = idle.pop()
            if connection.reusable and now - connection.idle_since < KEEPALIVE_S:
                return connection, True
            connection.close()
        async with asyncio.timeout(self._connect_timeout_s):
            _, connection = await asyncio.get_running_loop().create_connection(_Connection, *origin)
        return connection, False

    def _release(self, origin: Origin, connection: _Connection) -> None:
        if connection.reusable:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()
