"""Notification attempts: one row per channel tried for a recipient, in `notification_attempts` (smartgrid database)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from shared.notify.message import Notification
from shared.stores.postgres import Database

STATUSES = ("sent", "failed", "suppressed", "rate_limited", "digested")

_INSERT = """
INSERT INTO notification_attempts (alert_id, event_type, channel, recipient, status, error, attempted_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class Attempt:
    """What became of one notification through one channel for one recipient."""

    notification: Notification
    channel: str
    channel_kind: str
    recipient: str
    status: str
    attempted_at: datetime
    error: str | None = None


class AttemptStore:
    """The `notification_attempts` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, attempts: Sequence[Attempt]) -> None:
        """Insert the attempts in one transaction."""
        if not attempts:
            return
        async with self._database.connection() as conn, conn.cursor() as cursor:
            await cursor.executemany(_INSERT, [
                (a.notification.key, a.notification.kind, a.channel, a.recipient, a.status, a.error, a.attempted_at)
                for a in attempts
            ])

    async def for_alert(self, alert_id: str) -> list[dict[str, Any]]:
        """The attempts of one alert (or digest), oldest first."""
        async with self._database.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT id, alert_id, event_type, channel, recipient, status, error, attempted_at "
                "FROM notification_attempts WHERE alert_id = %s ORDER BY id", (alert_id,),
            )
            return await cursor.fetchall()
