"""Outbound HTTP POSTs to one URL: one aiohttp session opened on first use, and the answer or why there was none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from shared.resilience import retryable_status


class Unreachable(ConnectionError):
    """Raised when the server could not be reached or did not answer in time."""


@dataclass(frozen=True)
class Answer:
    """The status and (at most 300 characters of) the text of an HTTP answer."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """True for an answer worth retrying, by Knative's rule (5xx, 404, 408, 409, 429)."""
        return retryable_status(self.status)


class Poster:
    """POSTs to one URL over one session, opened inside the running loop on first use."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body`; the answer, whatever its status; raises Unreachable when there was none."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url, data=body, headers=dict(headers)) as response:
                return Answer(response.status, (await response.text())[:300])
        except (aiohttp.ClientError, TimeoutError) as error:
            raise Unreachable(f"{self.url} unreachable: {str(error) or type(error).__name__}") from None

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
