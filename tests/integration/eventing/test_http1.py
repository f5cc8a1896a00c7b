"""The data plane's lean HTTP/1.1 client against real servers: keep-alive, framing, failures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from local import aio
from local.http1 import HttpClient, HttpError

pytestmark = pytest.mark.integration


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    """A client whose idle connections are closed at the end of the test."""
    http = HttpClient()
    yield http
    http.close()


@pytest.fixture
async def aiohttp_server() -> AsyncIterator[Callable[[web.Application], asyncio.Future[str]]]:
    """Serve aiohttp applications on free ports; return their base URLs."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner, url = await aio.serve(app)
        runners.append(runner)
        return url

    yield serve  # type: ignore[misc]
    for runner in runners:
        await runner.cleanup()


async def raw_server(answer: bytes, close_after: bool) -> tuple[asyncio.Server, str, list[int]]:
    """A TCP server answering `answer` to each request it reads; it counts connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head)[1]))
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections


async def test_posts_headers_and_body_and_reuses_the_connection(client: HttpClient, aiohttp_server) -> None:
    seen: list[tuple[str, str, bytes, str]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((request.path_qs, request.headers["ce-id"], await request.read(), request.host))
        return web.Response(status=201, body=b"answer", headers={"ce-specversion": "1.0", "Kne-Reason": "x"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    url = await aiohttp_server(app)
    first = await client.post(f"{url}/a?b=1", {"ce-id": "1"}, b"one", 5.0)
    second = await client.post(f"{url}/a?b=1", {"ce-id": "2"}, b"x" * 1_000_000, 5.0)
    assert (first.status, first.body, first.header_dict()["ce-specversion"], first.header_dict()["kne-reason"]) == \
        (201, b"answer", "1.0", "x")
    assert second.status == 201
    assert seen[0][:3] == ("/a?b=1", "1", b"one") and seen[1][2] == b"x" * 1_000_000
    assert seen[0][3] == url.removeprefix("http://")
    assert len(client._idle[("127.0.0.1", int(url.rsplit(":", 1)[1]))]) == 1  # one kept-alive connection


async def test_chunked_and_close_delimited_bodies(client: HttpClient) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    server, url, _ = await raw_server(chunked, close_after=False)
    server2, url2, _ = await raw_server(until_close, close_after=True)
    try:
        assert (await client.post(url, {}, b"", 5.0)).body == b"abcde"
        assert (await client.post(url2, {}, b"", 5.0)).body == b"until the end"
    finally:
        server.close()
        server2.close()


async def test_a_connection_the_server_closed_is_replaced(client: HttpClient) -> None:
    answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"  # keep-alive, then the server closes anyway
    server, url, connections = await raw_server(answer, close_after=True)
    try:
        for _ in range(3):
            assert (await client.post(url, {}, b"{}", 5.0)).status == 202
            await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert len(connections) == 3
    finally:
        server.close()


async def test_timeout_refused_and_broken_header(client: HttpClient, aiohttp_server) -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", slow)
    url = await aiohttp_server(app)
    with pytest.raises(TimeoutError):
        await client.post(f"{url}/", {}, b"", 0.2)
    server, refused, _ = await raw_server(b"", close_after=True)
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await client.post(refused, {}, b"", 5.0)
    with pytest.raises(ValueError, match="line break"):
        await client.post(f"{url}/", {"ce-id": "a\r\nx-injected: 1"}, b"", 5.0)
    with pytest.raises(ValueError, match="http://"):
        await client.post("https://example.org/", {}, b"", 5.0)


async def test_a_malformed_answer_is_an_http_error(client: HttpClient) -> None:
    server, url, _ = await raw_server(b"NOT HTTP AT ALL\r\n\r\n", close_after=False)
    try:
        with pytest.raises(HttpError):
            await client.post(url, {}, b"", 5.0)
    finally:
        server.close()
