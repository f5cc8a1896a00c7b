"""Alerts in the `smartgrid` database: one row per occurrence, and the history of its changes.

Recording a transition is idempotent (the history is keyed by the event id) and the alert row
follows the history: raised inserts it, updated changes severity and value, acknowledged and
cleared set the status. At most one alert per deduplication key is not cleared (a unique index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row

from shared.alerting.engine import ACKNOWLEDGED, CLEARED, RAISED, UPDATED, Transition
from shared.stores.postgres import Database

_HISTORY = """
INSERT INTO alert_history (event_id, alert_id, change, at, severity, value, threshold, message, actor)
VALUES (%(event_id)s, %(alert_id)s, %(change)s, %(at)s, %(severity)s, %(value)s, %(threshold)s, %(message)s,
        %(actor)s)
ON CONFLICT (event_id) DO NOTHING
"""
# An open alert of the same condition that the rule state no longer knows (Redis lost it, e.g. a
# memory-only local server restarted) is closed by the new occurrence: one open alert per condition.
_SUPERSEDE = """
UPDATE alerts SET status = 'cleared', cleared_at = %(at)s, cleared_by = 'detect', updated_at = %(at)s,
                  message = 'superseded by ' || %(alert_id)s
WHERE dedup_key = %(dedup_key)s AND status <> 'cleared' AND alert_id <> %(alert_id)s
"""
_APPLY = {
    RAISED: """
        INSERT INTO alerts (alert_id, dedup_key, rule_id, device_id, feeder_id, region, severity, status,
                            raised_at, updated_at, value, threshold, message)
        VALUES (%(alert_id)s, %(dedup_key)s, %(rule_id)s, %(device_id)s, %(feeder_id)s, %(region)s, %(severity)s,
                'open', %(raised_at)s, %(at)s, %(value)s, %(threshold)s, %(message)s)
        ON CONFLICT (alert_id) DO NOTHING""",
    UPDATED: """
        UPDATE alerts SET severity = %(severity)s, value = %(value)s, threshold = %(threshold)s,
                          message = %(message)s, updated_at = %(at)s
        WHERE alert_id = %(alert_id)s AND status <> 'cleared'""",
    ACKNOWLEDGED: """
        UPDATE alerts SET status = 'acknowledged', acknowledged_at = %(at)s, acknowledged_by = %(actor)s,
                          updated_at = %(at)s
        WHERE alert_id = %(alert_id)s AND status = 'open'""",
    CLEARED: """
        UPDATE alerts SET status = 'cleared', cleared_at = %(at)s, cleared_by = %(actor)s, updated_at = %(at)s,
                          message = CASE WHEN %(actor)s::text IS NULL THEN %(message)s ELSE message END
        WHERE alert_id = %(alert_id)s AND status <> 'cleared'""",
}
_COLUMNS = ("alert_id, dedup_key, rule_id, device_id, feeder_id, region, severity, status, raised_at, updated_at, "
            "acknowledged_at, acknowledged_by, cleared_at, cleared_by, value, threshold, message")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list: by status (`open` = not cleared), severity, feeder, rule, device, raised time."""

    status: str | None = "open"
    severity: str | None = None
    feeder_id: str | None = None
    rule_id: str | None = None
    device_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


class AlertStore:
    """Alerts and their history in one domain database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def close(self) -> None:
        """Close the database pool."""
        await self._database.close()

    async def record(self, transitions: Sequence[Transition]) -> int:
        """Store transitions in order, each once; returns how many were new."""
        new = 0
        async with self._database.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for transition in transitions:
                new += await _record(cur, transition)
        return new

    async def list(self, where: AlertFilter) -> list[dict[str, Any]]:
        """Alerts matching the filter, newest first."""
        clauses, params = _clauses(where)
        sql = f"SELECT {_COLUMNS} FROM alerts {clauses} ORDER BY raised_at DESC, alert_id LIMIT %s"
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, [*params, where.limit])
            return await cur.fetchall()

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        """One alert, None when unknown."""
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = %s", [alert_id])
            return await cur.fetchone()

    async def history(self, alert_id: str) -> list[dict[str, Any]]:
        """The changes of one alert, oldest first."""
        async with self._database.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT event_id, change, at, severity, value, threshold, message, actor "
                              "FROM alert_history WHERE alert_id = %s ORDER BY at, recorded_at", [alert_id])
            return await cur.fetchall()

    async def counts_by_rule(self, since: datetime | None = None) -> dict[str, int]:
        """Alerts raised per rule (since a time, if given)."""
        async with self._database.connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT rule_id, count(*) FROM alerts WHERE raised_at >= %s GROUP BY rule_id "
                              "ORDER BY rule_id", [since or datetime.min.replace(tzinfo=UTC)])
            return {rule: count for rule, count in await cur.fetchall()}


async def _record(cur: AsyncCursor[Any], transition: Transition) -> int:
    params = {
        "event_id": transition.event_id, "alert_id": transition.alert_id, "change": transition.change,
        "dedup_key": transition.dedup_key, "rule_id": transition.rule_id, "device_id": transition.device_id,
        "feeder_id": transition.feeder_id, "region": transition.region, "severity": transition.severity,
        "at": _time(transition.at), "raised_at": _time(transition.raised_at), "value": transition.value,
        "threshold": transition.threshold, "message": transition.message, "actor": transition.actor,
    }
    if transition.change == RAISED:
        await cur.execute(_SUPERSEDE, params)
        await cur.execute(_APPLY[RAISED], params)
    await cur.execute(_HISTORY, params)
    if cur.rowcount == 0:
        return 0
    if transition.change != RAISED:
        await cur.execute(_APPLY[transition.change], params)
    return 1


def _clauses(where: AlertFilter) -> tuple[str, list[Any]]:
    conditions, params = [], []
    if where.status == "open":
        conditions.append("status <> 'cleared'")
    elif where.status is not None:
        conditions.append("status = %s")
        params.append(where.status)
    for column, value in (("severity", where.severity), ("feeder_id", where.feeder_id),
                          ("rule_id", where.rule_id), ("device_id", where.device_id)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    if where.since is not None:
        conditions.append("raised_at >= %s")
        params.append(where.since)
    if where.until is not None:
        conditions.append("raised_at < %s")
        params.append(where.until)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def _time(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
