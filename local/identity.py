"""Identity on the local platform: signing keys, the platform's own OAuth clients, the first admin.

`smartgrid up` provisions, before any function takes a request:
- a signing key in `<state>/auth/keys` (mode 0600) unless one is there;
- a service client per function (`function-<name>`, role `registry-reader`: reads the device registry),
  `knative-eventing` (role `eventing`: the data plane's deliveries) and `smartgrid-cli` (role `admin`:
  the command line against the running platform), each with a secret made for this run;
- the user `admin` from SMARTGRID_ADMIN_PASSWORD when no user exists yet.
On a cluster the same clients are Secrets (knative/), the first admin a one-off `smartgrid users create`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shared.auth.keys import ensure_key
from shared.stores.postgres import Database
from shared.users.accounts import Accounts
from shared.users.lockout import LockoutPolicy
from shared.users.passwords import new_secret
from shared.users.services import ServiceClients

log = logging.getLogger("smartgrid.identity")

EVENTING_CLIENT = "knative-eventing"
CLI_CLIENT = "smartgrid-cli"
ACTOR = "smartgrid up"
ADDRESS_HEADER = "x-envoy-external-address"


def function_client(name: str) -> str:
    """The client id of a function's own OAuth client."""
    return f"function-{name}"


@dataclass(frozen=True)
class LocalIdentity:
    """The issuer, the keys' folder and every client's secret of this run."""

    issuer: str
    keys_dir: Path
    secrets: dict[str, str]

    def function_environment(self, name: str) -> dict[str, str]:
        """What a function needs: the issuer, and its own client (the users function: the keys too)."""
        env = {"SMARTGRID_AUTH_ISSUER": self.issuer, "SMARTGRID_CLIENT_ID": function_client(name),
               "SMARTGRID_CLIENT_SECRET": self.secrets[function_client(name)]}
        if name == "users":  # behind the local gateway, as behind Istio's, the client address is Envoy's header
            env.update(SMARTGRID_AUTH_KEYS_DIR=str(self.keys_dir), SMARTGRID_CLIENT_ADDRESS_HEADER=ADDRESS_HEADER)
        return env

    def credentials(self, client_id: str) -> tuple[str, str, str]:
        """(token endpoint, client id, secret) of one client."""
        return f"{self.issuer}/token", client_id, self.secrets[client_id]


async def provision_identity(users_dsn: str, issuer: str, keys_dir: Path, functions: Iterable[str],
                             admin_password: str | None) -> LocalIdentity:
    """Keys, clients and the first admin (see the module's docstring)."""
    ensure_key(keys_dir)
    roles = {EVENTING_CLIENT: ("eventing",), CLI_CLIENT: ("admin",)}
    roles.update({function_client(name): ("registry-reader",) for name in functions})
    secrets = {client_id: new_secret() for client_id in roles}
    database = Database(users_dsn, max_size=1)
    try:
        clients = ServiceClients(database)
        for client_id, secret in secrets.items():
            await clients.ensure(client_id, secret, roles[client_id], actor=ACTOR)
        accounts = Accounts(database, LockoutPolicy())
        if await accounts.count() == 0:
            if admin_password:
                await accounts.create("admin", "admin", admin_password, actor=ACTOR)
                log.info("created the first admin user 'admin' from SMARTGRID_ADMIN_PASSWORD")
            else:
                log.warning("no user exists yet: create the first admin with `smartgrid users create admin "
                            "--role admin --password-stdin`, or set SMARTGRID_ADMIN_PASSWORD before `smartgrid up`")
    finally:
        await database.close()
    return LocalIdentity(issuer, keys_dir, secrets)
