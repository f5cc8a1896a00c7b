"""The hash chain of the audit log: each row holds the SHA-256 of the row before it and of itself.

`hash = sha256(prev_hash + "\n" + canonical JSON of the row's content)`, the first row's prev_hash
being GENESIS. Changing a row changes its hash (seen at that row); removing one leaves a gap in
`seq` and a prev_hash that matches nothing (seen at the row after it); moving one changes the
content hashed at its place. Removing the newest rows is seen only against a head hash kept
elsewhere (`smartgrid audit verify` prints the head for that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What happened: who (`actor`) did what (`action`) to what (`target`), with which outcome, where."""

    actor: str
    action: str
    outcome: str
    source: str
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class ChainedRow:
    """A stored row of the audit log."""

    seq: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str


def row_hash(prev_hash: str, seq: int, at: datetime, entry: AuditEntry) -> str:
    """The hash a row with this content must hold, after a row whose hash is `prev_hash`."""
    content = {
        "seq": seq, "at": at.astimezone(UTC).isoformat(timespec="microseconds"), "actor": entry.actor,
        "action": entry.action, "target": entry.target, "outcome": entry.outcome, "source": entry.source,
        "detail": entry.detail, "event_id": entry.event_id,
    }
    return hashlib.sha256(prev_hash.encode() + b"\n" + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Verification:
    """The outcome of walking the chain: rows checked, the first problem (None when intact), the head."""

    rows: int = 0
    problem: str | None = None
    bad_seq: int | None = None
    head: str = GENESIS

    @property
    def intact(self) -> bool:
        """True when every row checked out."""
        return self.problem is None


def verify(rows: Iterable[ChainedRow]) -> Verification:
    """Walk rows in `seq` order and report the first changed, removed or reordered row."""
    result = Verification()
    expected_seq = 1
    for row in rows:
        if row.seq != expected_seq:
            return _bad(result, row.seq, f"row {row.seq}: expected seq {expected_seq} next, found {row.seq} "
                                         f"(rows {expected_seq}..{row.seq - 1} removed)")
        if row.prev_hash != result.head:
            return _bad(result, row.seq, f"row {row.seq}: expected prev_hash {result.head[:16]}…, found "
                                         f"{row.prev_hash[:16]}… (a row before it was removed or moved)")
        if row_hash(row.prev_hash, row.seq, row.at, row.entry) != row.hash:
            return _bad(result, row.seq, f"row {row.seq}: its content does not match its hash (changed or moved)")
        result.rows, result.head, expected_seq = result.rows + 1, row.hash, expected_seq + 1
    return result


def _bad(result: Verification, seq: int, problem: str) -> Verification:
    result.problem, result.bad_seq = problem, seq
    return result
