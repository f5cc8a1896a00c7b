"""The audit log table of the users database: append (chained, deduplicated by event id), page, verify.

Appends are serialised by a transaction-scoped advisory lock, so the chain has one writer at a
time; an entry whose `event_id` is stored already (a redelivered audit event) is not added again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared.audit.chain import (
    GENESIS,
    AuditEntry,
    ChainedRow,
    Verification,
    row_hash,
    verify,
)
from shared.stores.postgres import Database

_LOCK_KEY = 0x5347_4155  # "SGAU"
_COLUMNS = "seq, at, actor, action, target, outcome, source, detail, event_id, prev_hash, hash"


@dataclass(frozen=True)
class AuditQuery:
    """Filters and page of `GET /api/v1/audit`: rows after `after_seq`, oldest first."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    limit: int = 100


async def append(conn: AsyncConnection, entry: AuditEntry) -> int | None:
    """Append `entry` inside the caller's transaction; its seq, or None when its event_id is stored."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    if entry.event_id is not None:
        seen = await (await conn.execute("SELECT seq FROM audit_log WHERE event_id = %s", (entry.event_id,))).fetchone()
        if seen is not None:
            return None
    head = await (await conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).fetchone()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
    at = (entry.at or datetime.now(UTC)).astimezone(UTC)
    await conn.execute(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (seq, at, entry.actor, entry.action, entry.target, entry.outcome, entry.source, Jsonb(entry.detail),
         entry.event_id, prev_hash, row_hash(prev_hash, seq, at, entry)))
    return seq


class AuditLog:
    """The audit log of one users database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> int | None:
        """Append one entry in its own transaction (see `append`)."""
        async with self._database.connection() as conn, conn.transaction():
            return await append(conn, entry)

    async def page(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Rows matching `query`, oldest first, at most `limit`."""
        where, args = ["seq > %s"], [query.after_seq]
        for column, value, op in (("actor", query.actor, "="), ("action", query.action, "="),
                                  ("at", query.since, ">="), ("at", query.until, "<")):
            if value is not None:
                where.append(f"{column} {op} %s")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s"
        async with self._database.connection() as conn:
            rows = await (await conn.execute(sql, (*args, query.limit))).fetchall()
        return [_as_dict(row) for row in rows]

    async def verify(self) -> Verification:
        """Walk the whole chain (see shared/audit/chain.py)."""
        async with self._database.connection() as conn:
            return verify([row async for row in _rows(conn)])


async def _rows(conn: AsyncConnection) -> AsyncIterator[ChainedRow]:
    async with conn.cursor(name="audit_walk") as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
        async for seq, at, actor, action, target, outcome, source, detail, event_id, prev_hash, hash_ in cursor:
            entry = AuditEntry(actor, action, outcome, source, target, detail, at, event_id)
            yield ChainedRow(seq, at, entry, prev_hash, hash_)


def _as_dict(row: tuple) -> dict[str, Any]:
    seq, at, actor, action, target, outcome, source, detail, event_id, prev_hash, hash_ = row
    return {"seq": seq, "at": at, "actor": actor, "action": action, "target": target, "outcome": outcome,
            "source": source, "detail": detail, "event_id": event_id, "prev_hash": prev_hash, "hash": hash_}
