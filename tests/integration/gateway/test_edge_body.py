"""The body cap on a real aiohttp server: a 2 GB upload is answered 413 after about the limit, in moments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from local.gateway.edge import (
    BodyTooLarge,
    check_content_length,
    read_capped,
    refuse_too_large,
)

pytestmark = pytest.mark.integration
LIMIT = 1 << 20
CHUNK = b"x" * (64 << 10)
TWO_GB = 2 << 30
FEW_MB = 16 << 20  # the limit, plus what sockets and the client's buffers hold


async def capped_echo(request: web.Request) -> web.StreamResponse:
    """The gateway's use of the cap: refuse a declared length at once, else read up to the limit."""
    try:
        check_content_length(request.headers, LIMIT)
        body = await read_capped(request.content, LIMIT)
    except BodyTooLarge as error:
        return await refuse_too_large(request, error)
    return web.json_response({"bytes": len(body)})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """The URL of an aiohttp server capping bodies at LIMIT (aiohttp's default lingering included)."""
    app = web.Application()
    app.router.add_post("/", capped_echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/"
    await runner.cleanup()


class Upload:
    """A 2 GB body as 64 KiB chunks made on demand, counting what the client took to send."""

    def __init__(self) -> None:
        self.taken = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for _ in range(TWO_GB // len(CHUNK)):
            self.taken += len(CHUNK)
            yield CHUNK


async def test_a_body_within_the_limit_is_read_whole(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        for size in (0, 1000, LIMIT):
            async with session.post(server, data=b"y" * size) as response:
                assert (response.status, await response.json()) == (200, {"bytes": size})


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
async def test_a_2_gb_upload_gets_413_after_a_few_mb(server: str, declared: bool) -> None:
    upload = Upload()
    started = time.monotonic()
    headers = {"Content-Length": str(TWO_GB)} if declared else {}
    async with (aiohttp.ClientSession() as session,
                session.post(server, data=upload.chunks(), headers=headers) as response):
        status, error, connection = response.status, await response.json(), response.headers.get("Connection")
    assert (status, connection) == (413, "close")
    assert error["error"] == "body too large" and error["limit"] == LIMIT
    assert ("found Content-Length 2147483648" in error["message"]) is declared
    assert upload.taken < FEW_MB, f"{upload.taken} bytes sent before the answer"
    assert time.monotonic() - started < 5.0


async def test_a_client_that_ignores_the_answer_is_cut_off(server: str) -> None:
    """Without the close, aiohttp would read and discard whatever it sends for 10 s (gigabytes)."""
    url = server.removeprefix("http://").rstrip("/")
    host, port = url.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST / HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n")
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    answer = asyncio.create_task(reader.read(1024))
    sent, started = 0, time.monotonic()
    with pytest.raises(OSError):  # reset or broken pipe, once the server closed
        while time.monotonic() - started < 5.0:
            writer.write(frame)
            await writer.drain()
            sent += len(CHUNK)
    assert sent < FEW_MB and time.monotonic() - started < 5.0
    try:
        head = await asyncio.wait_for(answer, 1.0)
    except OSError:
        head = b""  # the reset may discard the answer before it is read: TCP allows it
    assert head == b"" or head.startswith(b"HTTP/1.1 413 ")
    writer.close()
