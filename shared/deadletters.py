"""Dead letters: events the platform could not process, kept with their reason, replayable."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.cloudevents import CloudEvent
from shared.stores.postgres import Database

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")

_INSERT = """
INSERT INTO dead_letters
    (digest, event_id, event_type, event_source, attributes, data, error_dest, error_code, error_text)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (digest) DO UPDATE
    SET attributes = EXCLUDED.attributes, data = EXCLUDED.data, error_code = EXCLUDED.error_code,
        error_text = EXCLUDED.error_text, received_at = now(), replayed_at = NULL
    WHERE dead_letters.replayed_at IS NOT NULL
RETURNING id
"""


@dataclass(frozen=True)
class DeadLetter:
    """A stored dead letter."""

    id: int
    event: CloudEvent
    error_dest: str | None
    error_code: int | None
    error_text: str | None
    received_at: datetime
    replayed_at: datetime | None


def error_text(event: CloudEvent) -> str | None:
    """The subscriber's answer (`knativeerrordata`, base64) as text."""
    encoded = event.attributes.get("knativeerrordata")
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return encoded


def digest(event: CloudEvent) -> bytes:
    """What makes two dead letters the same one: all attributes and the data."""
    attributes = orjson.dumps(event.attributes, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(attributes + b"\0" + (event.data or b"")).digest()


def original_event(event: CloudEvent) -> CloudEvent:
    """The event as it was before dead-lettering: without the `knativeerror*` extensions."""
    attributes = {k: v for k, v in event.attributes.items() if k not in ERROR_EXTENSIONS}
    return CloudEvent(attributes, event.data)


class DeadLetterStore:
    """The `dead_letters` table of the `smartgrid` database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def save(self, event: CloudEvent) -> int | None:
        """Store a dead letter; a redelivered one is kept once. Returns its id when new or failed again."""
        code = event.attributes.get("knativeerrorcode")
        async with self._database.connection() as conn:
            cursor = await conn.execute(_INSERT, (
                digest(event), event.id, event.type, event.source, Jsonb(event.attributes), event.data,
                event.attributes.get("knativeerrordest"), int(code) if code and code.isdigit() else None,
                error_text(event),
            ))
            row = await cursor.fetchone()
        return row[0] if row else None

    async def list(self, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, newest first; replayed ones only when asked."""
        where = "" if include_replayed else "WHERE replayed_at IS NULL"
        return await self._select(f"{where} ORDER BY id DESC LIMIT %s", (limit,))

    async def pending(self, ids: Sequence[int] | None) -> list[DeadLetter]:
        """Not yet replayed dead letters: those of `ids`, or all when None."""
        if ids is None:
            return await self._select("WHERE replayed_at IS NULL ORDER BY id", ())
        return await self._select("WHERE replayed_at IS NULL AND id = ANY(%s) ORDER BY id", (list(ids),))

    async def mark_replayed(self, dead_letter_id: int) -> None:
        """Record that a dead letter was sent to the broker again."""
        async with self._database.connection() as conn:
            await conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (dead_letter_id,))

    async def _select(self, clause: str, params: tuple[Any, ...]) -> list[DeadLetter]:
        async with self._database.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT id, attributes, data, error_dest, error_code, error_text, received_at, replayed_at "
                f"FROM dead_letters {clause}", params,
            )
            rows = await cursor.fetchall()
        return [
            DeadLetter(row["id"], CloudEvent(row["attributes"], row["data"]), row["error_dest"], row["error_code"],
                       row["error_text"], row["received_at"], row["replayed_at"])
            for row in rows
        ]
