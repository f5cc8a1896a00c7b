"""A client of the readings API (shared/readings/api.py): the readings of a time range, page by page.

The API wants a token of role analyst or admin: given a ServiceToken, every request carries its access
token as `Authorization: Bearer`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp

from shared.auth.client import ServiceToken
from shared.readings.api import MAX_LIMIT
from shared.resilience import Downstream, retryable_status


class ReadingsUnavailable(ConnectionError):
    """Raised when the readings API could not be reached or answered a status worth retrying."""


class ReadingsRefused(RuntimeError):
    """Raised when the readings API refused a request (a status not worth retrying) or answered no page."""


def is_transient(error: BaseException) -> bool:
    """True for failures of the readings API that may pass on a later try."""
    return isinstance(error, ReadingsUnavailable)


class ReadingsClient:
    """Reads `<url>/{meters,sensors}` (url: `.../api/v1/readings`) through a downstream (retries, breaker),
    with `token`'s access token when one is given."""

    def __init__(self, url: str, session: aiohttp.ClientSession, *, downstream: Downstream,
                 token: ServiceToken | None = None) -> None:
        self._url = url.rstrip("/")
        self._session = session
        self._downstream = downstream
        self._token = token

    async def pages(self, kind: str, start: datetime, end: datetime, *,
                    limit: int = MAX_LIMIT) -> AsyncIterator[list[dict[str, Any]]]:
        """The readings of `kind` (meters, sensors) with time in [start, end), one page at a time, in
        (time, device id) order; raises ReadingsRefused, or ReadingsUnavailable once retries are spent."""
        url = f"{self._url}/{kind}"
        params = {"from": start.isoformat(), "to": end.isoformat(), "limit": str(limit)}
        while True:
            page = await self._downstream.call(lambda: self._get(url, params), what=f"read {kind}")
            yield page["readings"]
            if page["next"] is None:
                return
            params = {**params, "after": page["next"]}

    async def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self._token.get()}"} if self._token is not None else {}
        try:
            async with self._session.get(url, params=params, headers=headers) as response:
                if response.status != 200:
                    text = (await response.text())[:300]
                    failure = ReadingsUnavailable if retryable_status(response.status) else ReadingsRefused
                    raise failure(f"GET {url}: expected 200, found {response.status}: {text}")
                page = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ReadingsUnavailable(f"GET {url}: {str(error) or type(error).__name__}") from None
        if not isinstance(page, dict) or not isinstance(page.get("readings"), list) or "next" not in page:
            raise ReadingsRefused(f"GET {url}: expected {{\"readings\": [...], \"next\": ...}}, found {str(page)[:200]}")
        return page
