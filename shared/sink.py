"""Emitting CloudEvents to the broker (`K_SINK`, Knative's SinkBinding convention)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp

from shared.cloudevents import CloudEvent, to_http_binary
from shared.resilience import Downstreams, retryable_status


class SinkUnavailable(RuntimeError):
    """Raised when the broker did not accept an event; the caller answers 5xx so the sender retries."""


class SinkRejected(ValueError):
    """Raised when the broker's answer is final (e.g. 400 for an invalid event): retrying cannot help."""


def _is_unavailable(error: BaseException) -> bool:
    return isinstance(error, SinkUnavailable)


class EventSink:
    """Posts events in HTTP binary mode to one URL through the `broker` downstream (retries, breaker)."""

    def __init__(self, url: str, downstreams: Downstreams, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._broker = downstreams.get("broker", _is_unavailable)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, event: CloudEvent) -> None:
        """Deliver one event; raises SinkUnavailable, SinkRejected or CircuitOpen."""
        await self._broker.call(lambda: self._post(event), what=f"emit {event.type} to {self.url}")

    async def send_all(self, events: Iterable[CloudEvent]) -> None:
        """Deliver events concurrently; raises the first failure after all settled."""
        results = await asyncio.gather(*(self.send(event) for event in events), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def _post(self, event: CloudEvent) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers, body = to_http_binary(event)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SinkUnavailable(f"broker at {self.url} unreachable: {error or type(error).__name__}") from None
        if 200 <= response.status < 300:
            return
        if not retryable_status(response.status):
            raise SinkRejected(f"broker at {self.url} refused event {event.id}: {response.status} {text[:300]}")
        raise SinkUnavailable(f"broker at {self.url} answered {response.status}: {text[:300]}")
