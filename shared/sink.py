"""Emitting CloudEvents to the broker (`K_SINK`, Knative's SinkBinding convention)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from shared.cloudevents import CloudEvent, to_http_binary
from shared.outbound import Poster, Unreachable
from shared.resilience import Downstreams


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
        self._poster = Poster(url, timeout_s=timeout_s)

    async def send(self, event: CloudEvent) -> None:
        """Deliver one event; raises SinkUnavailable, SinkRejected or CircuitOpen."""
        await self._broker.call(lambda: self._post(event), what=f"emit {event.type} to {self.url}")

    async def send_all(self, events: Iterable[CloudEvent]) -> None:
        """Deliver events: those of one partition key one after another, in order (a consumer such as
        detect drops a reading older than its device's last), different keys concurrently; raises the first
        failure after all settled."""
        by_key: dict[str | None, list[CloudEvent]] = defaultdict(list)
        for event in events:
            by_key[event.attributes.get("partitionkey")].append(event)
        results = await asyncio.gather(*(self._send_in_order(same_key) for same_key in by_key.values()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _send_in_order(self, events: list[CloudEvent]) -> None:
        for event in events:
            await self.send(event)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._poster.close()

    async def _post(self, event: CloudEvent) -> None:
        headers, body = to_http_binary(event)
        try:
            answer = await self._poster.post(body, headers)
        except Unreachable as error:
            raise SinkUnavailable(f"broker at {error}") from None
        if answer.ok:
            return
        if not answer.retryable:
            raise SinkRejected(f"broker at {self.url} refused event {event.id}: {answer.status} {answer.text}")
        raise SinkUnavailable(f"broker at {self.url} answered {answer.status}: {answer.text}")
