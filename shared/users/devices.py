"""The device registry: sensors, meters and gateways, their client secrets, and which meters a gateway serves.

A sensor or a gateway registered on its own gets a client secret (shown once, stored as SHA-256) to
take tokens with `client_credentials`; a meter registered behind a gateway has none: its readings
come through the gateway. A revoked device keeps its row (for the audit log) but loses its secret.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, errors

from shared.audit.chain import AuditEntry
from shared.audit.log import append
from shared.auth.principal import DEVICE_KINDS
from shared.stores.postgres import Database
from shared.users.errors import Conflict, NotFound, UsersError
from shared.users.passwords import hash_secret, new_secret, secret_matches

SOURCE = "users"
MAX_BATCH = 10_000
_COLUMNS = "device_id, kind, gateway_id, revoked_at, created_at"


class Devices:
    """The devices table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def register(self, specs: list[dict[str, Any]], *, actor: str) -> list[dict[str, Any]]:
        """Register devices (one transaction); each answer holds `client_secret` when one was made."""
        if not 1 <= len(specs) <= MAX_BATCH:
            raise UsersError("devices", f"expected 1 to {MAX_BATCH} devices, found {len(specs)}")
        checked = [_checked(index, spec, len(specs) > 1) for index, spec in enumerate(specs)]
        answers = []
        async with self._database.connection() as conn, conn.transaction():
            for device_id, kind, gateway_id in checked:
                secret = None if gateway_id is not None else new_secret()
                if gateway_id is not None:
                    await _require_gateway(conn, gateway_id)
                try:
                    async with conn.transaction():
                        await conn.execute(
                            "INSERT INTO devices (device_id, kind, gateway_id, secret_hash) VALUES (%s, %s, %s, %s)",
                            (device_id, kind, gateway_id, hash_secret(secret) if secret else None))
                except errors.UniqueViolation:
                    raise Conflict("device_id", f"expected a new device id, found {device_id!r} registered") from None
                except errors.CheckViolation:
                    raise UsersError("device_id", "expected 1-128 letters, digits or . _ : -, found "
                                                  f"{device_id!r}") from None
                answer = {"device_id": device_id, "kind": kind, "gateway_id": gateway_id}
                if secret is not None:
                    answer.update(client_id=device_id, client_secret=secret)
                answers.append(answer)
            await append(conn, AuditEntry(actor, "device.register", "success", SOURCE,
                                          checked[0][0] if len(checked) == 1 else f"{len(checked)} devices",
                                          {"devices": [c[0] for c in checked[:100]], "count": len(checked)}))
        return answers

    async def list(self, *, kind: str | None = None, gateway_id: str | None = None) -> list[dict[str, Any]]:
        """Devices by id, optionally of one kind or behind one gateway."""
        where, args = [], []
        if kind is not None:
            where.append("kind = %s")
            args.append(kind)
        if gateway_id is not None:
            where.append("gateway_id = %s")
            args.append(gateway_id)
        sql = f"SELECT {_COLUMNS} FROM devices {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY device_id"
        async with self._database.connection() as conn:
            return [_public(row) for row in await (await conn.execute(sql, args)).fetchall()]

    async def get(self, device_id: str) -> dict[str, Any]:
        """One device; a gateway with the meters registered behind it (`meters`). Raises NotFound."""
        async with self._database.connection() as conn:
            row = await (await conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE device_id = %s",
                                            (device_id,))).fetchone()
            if row is None:
                raise NotFound("device_id", f"expected a registered device id, found {device_id!r}")
            device = _public(row)
            if device["kind"] == "gateway":
                meters = await (await conn.execute(
                    "SELECT device_id FROM devices WHERE gateway_id = %s AND revoked_at IS NULL ORDER BY device_id",
                    (device_id,))).fetchall()
                device["meters"] = [meter for (meter,) in meters]
        return device

    async def revoke(self, device_id: str, *, actor: str) -> dict[str, Any]:
        """Revoke a device (and the meters behind a gateway stay registered but unusable through it)."""
        async with self._database.connection() as conn, conn.transaction():
            row = await (await conn.execute(
                f"UPDATE devices SET revoked_at = coalesce(revoked_at, now()), secret_hash = NULL "
                f"WHERE device_id = %s RETURNING {_COLUMNS}", (device_id,))).fetchone()
            if row is None:
                raise NotFound("device_id", f"expected a registered device id, found {device_id!r}")
            await append(conn, AuditEntry(actor, "device.revoke", "success", SOURCE, device_id))
        return _public(row)

    async def renew_secret(self, device_id: str, *, actor: str) -> dict[str, Any]:
        """A new client secret for a device that has one (the old one stops working at once); raises
        NotFound for an unknown or revoked device, Conflict for a meter behind a gateway (no secret)."""
        secret = new_secret()
        async with self._database.connection() as conn, conn.transaction():
            row = await (await conn.execute(
                "SELECT kind, gateway_id, revoked_at FROM devices WHERE device_id = %s FOR UPDATE",
                (device_id,))).fetchone()
            if row is None or row[2] is not None:
                raise NotFound("device_id", f"expected a registered, unrevoked device, found {device_id!r}"
                                            f"{' (revoked)' if row else ''}")
            if row[1] is not None:
                raise Conflict("device_id", f"expected a device with its own client, found meter {device_id!r} "
                                            f"behind gateway {row[1]!r}")
            await conn.execute("UPDATE devices SET secret_hash = %s WHERE device_id = %s",
                               (hash_secret(secret), device_id))
            await append(conn, AuditEntry(actor, "device.secret", "success", SOURCE, device_id))
        return {"device_id": device_id, "kind": row[0], "gateway_id": None, "client_id": device_id,
                "client_secret": secret}

    async def authenticate(self, client_id: str, secret: str) -> str | None:
        """The kind of the device whose id and secret these are (not revoked), else None."""
        async with self._database.connection() as conn:
            row = await (await conn.execute(
                "SELECT kind, secret_hash FROM devices WHERE device_id = %s AND revoked_at IS NULL",
                (client_id,))).fetchone()
        return row[0] if row is not None and secret_matches(row[1], secret) else None


async def _require_gateway(conn: AsyncConnection, gateway_id: str) -> None:
    row = await (await conn.execute("SELECT kind, revoked_at FROM devices WHERE device_id = %s",
                                    (gateway_id,))).fetchone()
    if row is None or row[0] != "gateway" or row[1] is not None:
        raise UsersError("gateway_id", f"expected a registered gateway, found {gateway_id!r}")


def _checked(index: int, spec: Any, many: bool) -> tuple[str, str, str | None]:
    where = f"devices[{index}]." if many else ""
    if not isinstance(spec, dict):
        raise UsersError(where.rstrip(".") or "body", f"expected a JSON object, found {type(spec).__name__}")
    device_id, kind, gateway_id = spec.get("device_id"), spec.get("kind"), spec.get("gateway_id")
    if not isinstance(device_id, str) or not device_id:
        raise UsersError(f"{where}device_id", f"expected a device id, found {device_id!r}")
    if kind not in DEVICE_KINDS:
        raise UsersError(f"{where}kind", f"expected one of {', '.join(DEVICE_KINDS)}, found {kind!r}")
    if gateway_id is not None and (kind != "meter" or not isinstance(gateway_id, str)):
        raise UsersError(f"{where}gateway_id", f"expected a gateway only for a meter, found {gateway_id!r} "
                                               f"for a {kind}")
    return device_id, kind, gateway_id


def _public(row: tuple) -> dict[str, Any]:
    device_id, kind, gateway_id, revoked_at, created_at = row
    return {"device_id": device_id, "kind": kind, "gateway_id": gateway_id, "revoked": revoked_at is not None,
            "revoked_at": revoked_at, "created_at": created_at}
