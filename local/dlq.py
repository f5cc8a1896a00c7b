"""`smartgrid dlq list` and `smartgrid dlq replay`: look at dead letters, send them again.

Each replayed letter is reported to the audit log (`com.smartgrid.audit.recorded` through the broker,
action `deadletter.replay`, target the letter's id) as the command line's OAuth client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from local.identity import CLI_CLIENT
from local.identity_cli import cli_token_if_any
from local.state import PlatformState
from shared.audit.chain import AuditEntry
from shared.audit.events import AuditReporter
from shared.config import Settings
from shared.deadletters import DeadLetter, DeadLetterStore, original_event
from shared.resilience import CircuitOpen, Downstreams
from shared.sink import EventSink, SinkRejected, SinkUnavailable
from shared.stores.postgres import Database

log = logging.getLogger("smartgrid.dlq")

SOURCE = "/smartgrid/cli"
REPLAY_ACTION = "deadletter.replay"


def targets(settings: Settings) -> tuple[str, str]:
    """The `smartgrid` database DSN and the broker URL: from the environment, else from `up`'s state."""
    dsn, broker = settings.domain_dsns.get("smartgrid"), settings.sink_url
    if dsn is None or broker is None:
        state = PlatformState.load(settings.state_dir)
        dsn, broker = dsn or state.dsns["smartgrid"], broker or state.endpoints["broker"]
    return dsn, broker


async def list_dead_letters(settings: Settings, *, include_replayed: bool, limit: int) -> list[DeadLetter]:
    """Dead letters, newest first."""
    dsn, _ = targets(settings)
    database = Database(dsn, max_size=1)
    try:
        return await DeadLetterStore(database).list(include_replayed=include_replayed, limit=limit)
    finally:
        await database.close()


async def replay(settings: Settings, ids: Sequence[int] | None) -> tuple[list[int], list[tuple[int, str]]]:
    """Send pending dead letters (those of `ids`, or all) to the broker, each replay audited; return
    (replayed, failed)."""
    dsn, broker = targets(settings)
    database, sink = Database(dsn, max_size=1), EventSink(broker, Downstreams.from_settings(settings))
    store, audit, actor = DeadLetterStore(database), AuditReporter(sink, SOURCE), cli_actor(settings)
    replayed: list[int] = []
    failed: list[tuple[int, str]] = []
    try:
        for letter in await store.pending(ids):
            try:
                await sink.send(original_event(letter.event))
            except (SinkUnavailable, SinkRejected, CircuitOpen) as error:
                failed.append((letter.id, str(error)))
                continue
            await store.mark_replayed(letter.id)
            replayed.append(letter.id)
            await _audit_replay(audit, actor, letter)
    finally:
        await sink.close()
        await database.close()
    return replayed, failed


def cli_actor(settings: Settings) -> str:
    """Who replays, in the audit log: the command line's OAuth client id (SMARTGRID_CLIENT_ID, else the running
    platform's), else CLI_CLIENT."""
    token = cli_token_if_any(settings)
    return token.client_id if token is not None else CLI_CLIENT


async def _audit_replay(audit: AuditReporter, actor: str, letter: DeadLetter) -> None:
    """Report one replay; a broker that refuses the entry is logged, the letter stays replayed."""
    entry = AuditEntry(actor, REPLAY_ACTION, "success", SOURCE, str(letter.id),
                       {"type": letter.event.type, "event_id": letter.event.id})
    try:
        await audit.report(entry)
    except (SinkUnavailable, SinkRejected, CircuitOpen) as error:
        log.warning("dead letter %s replayed, but its audit entry was not reported: %s", letter.id, error)


def format_table(letters: Sequence[DeadLetter]) -> str:
    """The dead letters as a text table, one line each."""
    lines = [f"{'ID':>6}  {'RECEIVED':19}  {'TYPE':36}  {'SOURCE':28}  {'CODE':>4}  {'REPLAYED':8}  ERROR"]
    for letter in letters:
        error = (letter.error_text or "").replace("\n", " ")
        lines.append(
            f"{letter.id:>6}  {letter.received_at:%Y-%m-%d %H:%M:%S}  {letter.event.type[:36]:36}  "
            f"{letter.event.source[:28]:28}  {letter.error_code or '':>4}  "
            f"{'yes' if letter.replayed_at else 'no':8}  {error[:160]}"
        )
    return "\n".join(lines)
