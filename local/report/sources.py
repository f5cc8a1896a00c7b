"""Where the report reads: the analytics and alert APIs, over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from local.state import PlatformState
from shared.config import Settings

ALERT_LIMIT = 1000


class SourceError(RuntimeError):
    """Raised when an API answers something other than a JSON list."""


@dataclass(frozen=True)
class Sources:
    """The base URLs of the analytics API (`.../api/v1/analytics`) and the alert API (`.../api/v1/alerts`)."""

    analytics: str
    alerts: str

    @classmethod
    def resolve(cls, settings: Settings, analytics: str | None, alerts: str | None) -> Sources:
        """The URLs given, else those of the running platform's state file."""
        if analytics is None or alerts is None:
            endpoints = PlatformState.load(settings.state_dir).endpoints
            analytics, alerts = analytics or endpoints["analytics"], alerts or endpoints["alerts"]
        return cls(analytics.rstrip("/"), alerts.rstrip("/"))


async def feeder_buckets(session: aiohttp.ClientSession, sources: Sources, feeder: str, bucket: str,
                         start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The feeder's aggregates of `bucket` starting in [start, end), oldest first."""
    params = {"from": start.isoformat(), "to": end.isoformat(), "bucket": bucket}
    return await _get_list(session, f"{sources.analytics}/feeders/{feeder}", params)


async def feeder_alerts(session: aiohttp.ClientSession, sources: Sources, feeder: str,
                        start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The feeder's alerts of any status raised in [start, end], newest first."""
    params = {"feeder": feeder, "status": "all", "since": start.isoformat(), "until": end.isoformat(),
              "limit": str(ALERT_LIMIT)}
    return await _get_list(session, sources.alerts, params)


async def _get_list(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    async with session.get(url, params=params) as response:
        if response.status != 200:
            raise SourceError(f"GET {url}: expected 200, found {response.status}: {(await response.text())[:200]}")
        document = await response.json(content_type=None)
    if not isinstance(document, list):
        raise SourceError(f"GET {url}: expected a JSON list, found {type(document).__name__}")
    return document
