"""Refresh tokens: opaque, stored hashed, rotated on every use; a rotated one used again kills its family.

A family is one login. `rotate` marks the presented token rotated and issues its successor in the
same family; presenting a token already rotated means it was copied (RFC 6819 5.2.2.3, Keycloak's
"revoke refresh token"): every token of the family is revoked, so neither holder can go on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.audit.chain import AuditEntry
from shared.audit.log import append
from shared.stores.postgres import Database
from shared.users.errors import OAuthError
from shared.users.passwords import hash_secret, new_secret

SOURCE = "users"


@dataclass(frozen=True)
class Refreshed:
    """A rotation's outcome: the user, their role and the new refresh token."""

    username: str
    role: str
    refresh_token: str


class Sessions:
    """The sessions table."""

    def __init__(self, database: Database, lifetime_s: float) -> None:
        self._database = database
        self._lifetime = timedelta(seconds=lifetime_s)

    async def start(self, username: str, client_id: str) -> str:
        """A new family's first refresh token."""
        token = new_secret()
        async with self._database.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO sessions (token_hash, family_id, username, client_id, expires_at) VALUES (%s, %s, %s, %s, %s)",
                (hash_secret(token), uuid.uuid4(), username, client_id, datetime.now(UTC) + self._lifetime))
        return token

    async def rotate(self, token: str, client_id: str) -> Refreshed:
        """Exchange a refresh token for its successor; raises OAuthError invalid_grant (audited)."""
        now = datetime.now(UTC)
        async with self._database.connection() as conn, conn.transaction():
            row = await (await conn.execute(
                "SELECT s.family_id, s.username, s.client_id, s.expires_at, s.rotated_at, s.revoked_at, u.role, "
                "u.disabled FROM sessions s JOIN users u USING (username) WHERE s.token_hash = %s FOR UPDATE OF s",
                (hash_secret(token),))).fetchone()
            reason = _refusal(row, client_id, now)
            if reason == "reused":
                await conn.execute("UPDATE sessions SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
                                   (now, row[0]))
            if reason is not None:
                actor = row[1] if row else "unknown"
                await append(conn, AuditEntry(actor, "token.refresh", "failure", SOURCE, actor,
                                              {"reason": reason, "client_id": client_id}))
            else:
                family_id, username, role = row[0], row[1], row[6]
                successor = new_secret()
                await conn.execute("UPDATE sessions SET rotated_at = %s WHERE token_hash = %s",
                                   (now, hash_secret(token)))
                await conn.execute(
                    "INSERT INTO sessions (token_hash, family_id, username, client_id, expires_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (hash_secret(successor), family_id, username, client_id, now + self._lifetime))
                await append(conn, AuditEntry(username, "token.refresh", "success", SOURCE, username,
                                              {"client_id": client_id}))
        if reason is not None:
            raise OAuthError("invalid_grant", f"refresh token {_DESCRIPTIONS[reason]}")
        return Refreshed(username, role, successor)

    async def revoke(self, token: str, *, actor: str) -> None:
        """Revoke the family of a refresh token (RFC 7009: an unknown token is no error)."""
        async with self._database.connection() as conn, conn.transaction():
            row = await (await conn.execute("SELECT family_id, username FROM sessions WHERE token_hash = %s",
                                            (hash_secret(token),))).fetchone()
            if row is not None:
                await conn.execute(
                    "UPDATE sessions SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL", (row[0],))
            await append(conn, AuditEntry(actor, "token.revoke", "success" if row else "failure", SOURCE,
                                          row[1] if row else None, {} if row else {"reason": "unknown token"}))


_DESCRIPTIONS = {"unknown": "unknown", "client": "was issued to another client", "expired": "expired",
                 "revoked": "revoked", "reused": "already used: its session is revoked",
                 "disabled": "of a disabled user"}


def _refusal(row: tuple | None, client_id: str, now: datetime) -> str | None:
    if row is None:
        return "unknown"
    _family, _user, issued_to, expires_at, rotated_at, revoked_at, _role, disabled = row
    if revoked_at is not None:
        return "revoked"
    if rotated_at is not None:
        return "reused"
    if issued_to != client_id:
        return "client"
    if expires_at <= now:
        return "expired"
    return "disabled" if disabled else None
