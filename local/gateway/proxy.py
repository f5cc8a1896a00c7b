"""The gateway's upstream client: pooled keep-alive HTTP/1.1 connections, the route's timeout and retries.

`Upstream.send` tries once, then again on the route's retry conditions (local/gateway/retries.py) while
tries remain and the route's `timeout` (covering every try) has not passed; each try is bounded by
`perTryTimeout`. What Envoy would answer itself becomes UpstreamFailure: 504 `upstream request timeout`,
503 `upstream connect error or disconnect/reset before headers` with the reset reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from local import http1
from local.gateway.retries import RetryPolicy

# Headers of one connection, not of the message (RFC 9110 section 7.6.1): never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_CONNECT_TIMEOUT_S = 10.0
_KEEPALIVE_S = http1.KEEPALIVE_S  # the same for aiohttp's pool (see local/http1.py)


class UpstreamFailure(Exception):
    """No answer from the destination: the status and text Envoy would answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    tries: int


class Upstream:
    """Keep-alive connections to every destination: httptools for plain HTTP (HEAD excepted: its answer's
    framing needs the request), aiohttp otherwise."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool = http1.HttpClient(_CONNECT_TIMEOUT_S)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=_KEEPALIVE_S, ttl_dns_cache=None),
            auto_decompress=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT_S),
        )

    async def close(self) -> None:
        self._pool.close()
        if self._session is not None:
            await self._session.close()

    async def send(self, method: str, url: str, headers: CIMultiDict[str], body: bytes, *,
                   retries: RetryPolicy, timeout_s: float | None) -> Answer:
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s else None
        tries = 0
        while True:
            tries += 1
            may_retry = tries <= retries.attempts
            budget = None if deadline is None else deadline - loop.time()
            if retries.per_try_timeout_s is not None:
                budget = retries.per_try_timeout_s if budget is None else min(budget, retries.per_try_timeout_s)
            try:
                async with asyncio.timeout(budget):
                    answer = await self._once(method, url, headers, body, tries)
                if not (may_retry and retries.retries_status(answer.status)) or self._past(deadline):
                    return answer
            except TimeoutError:
                if self._past(deadline) or not (may_retry and retries.on_reset):
                    raise UpstreamFailure(504, "upstream request timeout") from None
            except aiohttp.ClientConnectorError as error:
                if not (may_retry and retries.on_connect_failure) or self._past(deadline):
                    raise _connect_failure(error.os_error) from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError,
                    http1.HttpError, ConnectionResetError) as error:
                if not (may_retry and retries.on_reset) or self._past(deadline):
                    raise UpstreamFailure(503, "upstream connect error or disconnect/reset before headers. "
                                               f"reset reason: connection termination ({error})") from None
            except OSError as error:  # the httptools client's connection could not be made
                if not (may_retry and retries.on_connect_failure) or self._past(deadline):
                    raise _connect_failure(error) from None
            except aiohttp.ClientError as error:  # an answer that is no HTTP/1.1
                raise UpstreamFailure(503, "upstream connect error or disconnect/reset before headers. "
                                           f"reset reason: protocol error ({error})") from None
            await asyncio.sleep(retries.backoff_s(tries))

    async def _once(self, method: str, url: str, headers: CIMultiDict[str], body: bytes, tries: int) -> Answer:
        where = http1.split_url(url)
        if where is not None and method != "HEAD":
            origin, netloc, path = where
            fields = [(k, v) for k, v in headers.items() if k.lower() != "host"]
            head = http1.request_head(method, path, headers.get("host", netloc), fields, len(body))
            reply = await self._pool.request(origin, head, body)
            return Answer(reply.status, CIMultiDict((k, v) for k, v in reply.headers if k.lower() not in HOP_BY_HOP),
                          reply.body, tries)
        assert self._session is not None
        async with self._session.request(method, URL(url, encoded=True), headers=headers, data=body,
                                         allow_redirects=False) as response:
            return Answer(response.status, CIMultiDict(
                (k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP),
                await response.read(), tries)

    @staticmethod
    def _past(deadline: float | None) -> bool:
        return deadline is not None and asyncio.get_running_loop().time() >= deadline


def _connect_failure(error: object) -> UpstreamFailure:
    return UpstreamFailure(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                                f"connection failure ({error})")
