"""The audit log's hash chain: an intact chain verifies; a changed, removed or reordered row is named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.audit.chain import GENESIS, AuditEntry, ChainedRow, row_hash, verify

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def chain(count: int) -> list[ChainedRow]:
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        at = T0 + timedelta(seconds=seq)
        entry = AuditEntry(f"user-{seq}", "login", "success", "users", f"user-{seq}", {"address": "10.0.0.1"}, at)
        digest = row_hash(prev, seq, at, entry)
        rows.append(ChainedRow(seq, at, entry, prev, digest))
        prev = digest
    return rows


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    rows = chain(5)
    result = verify(rows)
    assert result.intact and result.rows == 5 and result.head == rows[-1].hash
    assert verify([]).intact


def test_a_changed_row_is_named() -> None:
    rows = chain(5)
    rows[2] = replace(rows[2], entry=replace(rows[2].entry, action="logout"))
    result = verify(rows)
    assert (result.intact, result.bad_seq) == (False, 3) and "row 3" in result.problem


def test_a_removed_row_is_named() -> None:
    rows = chain(5)
    del rows[1]
    result = verify(rows)
    assert (result.bad_seq, "rows 2..2 removed" in result.problem) == (3, True)


def test_reordered_rows_are_named() -> None:
    rows = chain(5)
    swapped = [rows[0], replace(rows[2], seq=2), replace(rows[1], seq=3), rows[3], rows[4]]
    assert verify(swapped).bad_seq == 2


def test_a_rehashed_forgery_breaks_the_next_link() -> None:
    rows = chain(4)
    forged_entry = replace(rows[1].entry, outcome="failure")
    rows[1] = replace(rows[1], entry=forged_entry, hash=row_hash(rows[1].prev_hash, 2, rows[1].at, forged_entry))
    result = verify(rows)
    assert result.bad_seq == 3 and "prev_hash" in result.problem
