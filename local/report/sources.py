"""Where the report reads: the analytics and alert APIs, over HTTP, with the command line's token (role
viewer or above; local/users_client.py `cli_token`) when it has one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from local.identity_cli import cli_token_if_any
from local.state import PlatformState
from shared.auth.client import ServiceToken
from shared.config import Settings

ALERT_LIMIT = 1000


class SourceError(RuntimeError):
    """Raised when an API answers something other than a JSON list."""


@dataclass(frozen=True)
class Sources:
    """The base URLs of the analytics API (`.../api/v1/analytics`) and the alert API (`.../api/v1/alerts`),
    and the token to call them with (None: no Authorization header)."""

    analytics: str
    alerts: str
    token: ServiceToken | None = field(default=None, compare=False, repr=False)

    @classmethod
    def resolve(cls, settings: Settings, analytics: str | None, alerts: str | None) -> Sources:
        """The URLs given, else those of the running platform's state file; the command line's token."""
        if analytics is None or alerts is None:
            endpoints = PlatformState.load(settings.state_dir).endpoints
            analytics, alerts = analytics or endpoints["analytics"], alerts or endpoints["alerts"]
        return cls(analytics.rstrip("/"), alerts.rstrip("/"), cli_token_if_any(settings))

    async def headers(self) -> dict[str, str]:
        """The Authorization header of the token, if any."""
        return {"Authorization": f"Bearer {await self.token.get()}"} if self.token is not None else {}


async def feeder_buckets(session: aiohttp.ClientSession, sources: Sources, feeder: str, bucket: str,
                         start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The feeder's aggregates of `bucket` starting in [start, end), oldest first."""
    params = {"from": start.isoformat(), "to": end.isoformat(), "bucket": bucket}
    return await _get_list(session, sources, f"{sources.analytics}/feeders/{feeder}", params)


async def feeder_alerts(session: aiohttp.ClientSession, sources: Sources, feeder: str,
                        start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The feeder's alerts of any status raised in [start, end], newest first."""
    params = {"feeder": feeder, "status": "all", "since": start.isoformat(), "until": end.isoformat(),
              "limit": str(ALERT_LIMIT)}
    return await _get_list(session, sources, sources.alerts, params)


async def _get_list(session: aiohttp.ClientSession, sources: Sources, url: str,
                    params: dict[str, str]) -> list[dict[str, Any]]:
    async with session.get(url, params=params, headers=await sources.headers()) as response:
        if response.status != 200:
            raise SourceError(f"GET {url}: expected 200, found {response.status}: {(await response.text())[:200]}")
        document = await response.json(content_type=None)
    if not isinstance(document, list):
        raise SourceError(f"GET {url}: expected a JSON list, found {type(document).__name__}")
    return document
