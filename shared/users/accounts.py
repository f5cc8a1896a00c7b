"""User accounts: create, list, change, delete, and the password check with lockout.

Every change is recorded in the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, errors

from shared.audit.chain import AuditEntry
from shared.audit.log import append
from shared.auth.principal import USER_ROLES
from shared.stores.postgres import Database
from shared.users.errors import Conflict, NotFound, UsersError
from shared.users.lockout import LockoutPolicy
from shared.users.passwords import check_policy, hash_password, password_matches

SOURCE = "users"
_PUBLIC = "username, role, disabled, failed_logins, locked_until, created_at, updated_at"


@dataclass(frozen=True)
class Login:
    """The outcome of a password check: the user's role when it passed, else why it failed."""

    ok: bool
    role: str | None = None
    reason: str | None = None


def check_role(role: Any) -> str:
    """`role` when it is a user role; raises UsersError naming `role`."""
    if role not in USER_ROLES:
        raise UsersError("role", f"expected one of {', '.join(USER_ROLES)}, found {role!r}")
    return role


class Accounts:
    """The users table."""

    def __init__(self, database: Database, lockout: LockoutPolicy) -> None:
        self._database = database
        self._lockout = lockout

    async def create(self, username: str, role: str, password: str, *, actor: str) -> dict[str, Any]:
        """Add a user; raises UsersError (bad name, role or password) or Conflict (name taken)."""
        check_role(role)
        _check_password(password)
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._database.connection() as conn, conn.transaction():
            try:
                async with conn.transaction():
                    row = await (await conn.execute(
                        f"INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s) RETURNING {_PUBLIC}",
                        (username, hashed, role))).fetchone()
            except errors.UniqueViolation:
                raise Conflict("username", f"expected a new username, found {username!r} taken") from None
            except errors.CheckViolation:
                raise UsersError("username", "expected 1-64 letters, digits or . _ @ -, starting with a letter "
                                             f"or digit, found {username!r}") from None
            await append(conn, AuditEntry(actor, "user.create", "success", SOURCE, username, {"role": role}))
        return _public(row)

    async def list(self) -> list[dict[str, Any]]:
        """Every user, by name."""
        async with self._database.connection() as conn:
            rows = await (await conn.execute(f"SELECT {_PUBLIC} FROM users ORDER BY username")).fetchall()
        return [_public(row) for row in rows]

    async def get(self, username: str) -> dict[str, Any]:
        """One user; raises NotFound."""
        async with self._database.connection() as conn:
            row = await (await conn.execute(f"SELECT {_PUBLIC} FROM users WHERE username = %s", (username,))).fetchone()
        if row is None:
            raise NotFound("username", f"expected a known username, found {username!r}")
        return _public(row)

    async def count(self) -> int:
        """How many users there are."""
        async with self._database.connection() as conn:
            return (await (await conn.execute("SELECT count(*) FROM users")).fetchone())[0]

    async def update(self, username: str, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
        """Change role, disabled, password or unlock; raises UsersError or NotFound."""
        unknown = sorted(set(changes) - {"role", "disabled", "password", "unlock"})
        if unknown:
            raise UsersError(unknown[0], f"expected role, disabled, password or unlock, found {unknown[0]!r}")
        sets, args, noted = [], [], {}
        if "role" in changes:
            sets.append("role = %s")
            args.append(check_role(changes["role"]))
            noted["role"] = changes["role"]
        if "disabled" in changes:
            if not isinstance(changes["disabled"], bool):
                raise UsersError("disabled", f"expected true or false, found {changes['disabled']!r}")
            sets.append("disabled = %s")
            args.append(changes["disabled"])
            noted["disabled"] = changes["disabled"]
        if "password" in changes:
            _check_password(changes["password"])
            sets.append("password_hash = %s")
            args.append(await asyncio.to_thread(hash_password, changes["password"]))
            noted["password"] = "changed"
        if changes.get("unlock") is True:
            sets.append("failed_logins = 0, locked_until = NULL")
            noted["unlock"] = True
        if not sets:
            raise UsersError("body", "expected at least one of role, disabled, password, unlock; found none")
        async with self._database.connection() as conn, conn.transaction():
            row = await (await conn.execute(
                f"UPDATE users SET {', '.join(sets)}, updated_at = now() WHERE username = %s RETURNING {_PUBLIC}",
                (*args, username))).fetchone()
            if row is None:
                raise NotFound("username", f"expected a known username, found {username!r}")
            if noted.get("disabled") is True or "password" in noted:
                await conn.execute("UPDATE sessions SET revoked_at = now() WHERE username = %s AND revoked_at IS NULL",
                                   (username,))
            await append(conn, AuditEntry(actor, "user.update", "success", SOURCE, username, noted))
        return _public(row)

    async def delete(self, username: str, *, actor: str) -> None:
        """Remove a user (and its sessions); raises NotFound."""
        async with self._database.connection() as conn, conn.transaction():
            deleted = await conn.execute("DELETE FROM users WHERE username = %s", (username,))
            if deleted.rowcount == 0:
                raise NotFound("username", f"expected a known username, found {username!r}")
            await append(conn, AuditEntry(actor, "user.delete", "success", SOURCE, username))

    async def login(self, username: str, password: str, address: str) -> Login:
        """Check a password under the lockout rules, audit the attempt, count or reset the failures."""
        now = datetime.now(UTC)
        async with self._database.connection() as conn:
            user = await (await conn.execute(
                "SELECT password_hash, role, disabled, failed_logins, locked_until, updated_at FROM users "
                "WHERE username = %s", (username,))).fetchone()
            place = await (await conn.execute(
                "SELECT failed_logins, locked_until, updated_at FROM address_lockouts WHERE address = %s",
                (address,))).fetchone()
        matches = await asyncio.to_thread(password_matches, user[0] if user else None, password)
        reason = None
        if place is not None and place[1] is not None and place[1] > now:
            reason = "address locked"
        elif user is None:
            reason = "unknown user"
        elif user[4] is not None and user[4] > now:
            reason = "user locked"
        elif not matches:
            reason = "wrong password"
        elif user[2]:
            reason = "user disabled"
        async with self._database.connection() as conn, conn.transaction():
            if reason is None:
                await conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = %s",
                                   (username,))
            else:
                await self._count_failure(conn, username if user else None, user, address, place, now)
            await append(conn, AuditEntry(username, "login", "success" if reason is None else "failure", SOURCE,
                                          username, {"address": address, **({"reason": reason} if reason else {})}))
        return Login(True, user[1]) if reason is None else Login(False, reason=reason)

    async def _count_failure(self, conn: AsyncConnection, username: str | None, user: tuple | None, address: str,
                             place: tuple | None, now: datetime) -> None:
        policy = self._lockout
        if username is not None and user is not None:
            failures = policy.failures_after(user[3], user[5] if user[3] else None, now)
            await conn.execute(
                "UPDATE users SET failed_logins = %s, locked_until = coalesce(%s, locked_until), updated_at = %s "
                "WHERE username = %s",
                (failures, policy.locked_until(failures, policy.user_limit, now), now, username))
        failures = policy.failures_after(place[0] if place else 0, place[2] if place else None, now)
        await conn.execute(
            "INSERT INTO address_lockouts (address, failed_logins, locked_until, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (address) DO UPDATE SET failed_logins = excluded.failed_logins, "
            "locked_until = coalesce(excluded.locked_until, address_lockouts.locked_until), "
            "updated_at = excluded.updated_at",
            (address, failures, policy.locked_until(failures, policy.address_limit, now), now))



def _check_password(password: Any) -> None:
    if not isinstance(password, str):
        raise UsersError("password", f"expected a string, found {type(password).__name__}")
    try:
        check_policy(password)
    except ValueError as error:
        raise UsersError("password", str(error)) from None


def _public(row: tuple) -> dict[str, Any]:
    username, role, disabled, failed, locked_until, created_at, updated_at = row
    return {"username": username, "role": role, "disabled": disabled, "failed_logins": failed,
            "locked_until": locked_until, "created_at": created_at, "updated_at": updated_at}
