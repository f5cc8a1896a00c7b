"""Platform service clients: the data plane, functions that read the registry, jobs, the local CLI.

Each has a client id, a hashed secret and roles (shared/auth/principal.py SERVICE_ROLES), and takes
tokens with `client_credentials`. `ensure` (re)sets a client's secret; the platform's provisioning
calls it (locally `smartgrid up`, on a cluster the Secrets).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.audit.chain import AuditEntry
from shared.audit.log import append
from shared.auth.principal import SERVICE_ROLES
from shared.stores.postgres import Database
from shared.users.errors import UsersError
from shared.users.passwords import hash_secret, secret_matches

SOURCE = "users"


class ServiceClients:
    """The service_clients table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def ensure(self, client_id: str, secret: str, roles: Sequence[str], *, actor: str) -> None:
        """Create the client or replace its secret and roles."""
        unknown = sorted(set(roles) - set(SERVICE_ROLES))
        if unknown:
            raise UsersError("roles", f"expected roles among {', '.join(SERVICE_ROLES)}, found {unknown[0]!r}")
        async with self._database.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO service_clients (client_id, secret_hash, roles) VALUES (%s, %s, %s) "
                "ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash, roles = excluded.roles, "
                "revoked_at = NULL", (client_id, hash_secret(secret), list(roles)))
            await append(conn, AuditEntry(actor, "service.ensure", "success", SOURCE, client_id,
                                          {"roles": list(roles)}))

    async def authenticate(self, client_id: str, secret: str) -> tuple[str, ...] | None:
        """The roles of the service client whose id and secret these are, else None."""
        async with self._database.connection() as conn:
            row = await (await conn.execute(
                "SELECT secret_hash, roles FROM service_clients WHERE client_id = %s AND revoked_at IS NULL",
                (client_id,))).fetchone()
        return tuple(row[1]) if row is not None and secret_matches(row[0], secret) else None
