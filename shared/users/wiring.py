"""The users service, built once from the settings: database, keys, stores, token endpoint, guard, API."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.audit.chain import AuditEntry
from shared.audit.events import AUDIT_TYPE, entry_of
from shared.audit.log import AuditLog
from shared.auth.guard import Guard
from shared.auth.keys import KeyRing
from shared.auth.policy import EVENT_DELIVERY, RULES
from shared.auth.tokens import TokenIssuer, TokenVerifier, local_keys
from shared.cloudevents import CloudEvent
from shared.config import Settings
from shared.http import cloudevent_endpoint
from shared.stores.postgres import Database
from shared.users.accounts import Accounts
from shared.users.api import UsersApi
from shared.users.devices import Devices
from shared.users.lockout import LockoutPolicy
from shared.users.oauth import TokenEndpoint
from shared.users.services import ServiceClients
from shared.users.sessions import Sessions
from shared.validation.catalogue import Catalogue, UnknownEventType

SOURCE = "/smartgrid/functions/users"


def lockout_policy(settings: Settings) -> LockoutPolicy:
    """The lockout limits and delays of the settings."""
    return LockoutPolicy(settings.login_max_failures, settings.login_address_max_failures, settings.lockout_wait_s,
                         settings.lockout_max_wait_s, settings.lockout_reset_s)


class AuditIntake:
    """Appends the audit events other functions report, and this service's own refusals, to the log."""

    def __init__(self, audit: AuditLog, catalogue: Catalogue) -> None:
        self._audit = audit
        self._schema = catalogue.latest(AUDIT_TYPE)
        self._pending: set[asyncio.Task[Any]] = set()

    async def receive(self, event: CloudEvent) -> dict[str, Any]:
        """Append one `com.smartgrid.audit.recorded` (once: a redelivery adds nothing)."""
        if event.type != AUDIT_TYPE:
            raise UnknownEventType(event.type)
        seq = await self._audit.record(entry_of(event, self._schema.validate(event.json())))
        return {"seq": seq, "duplicate": seq is None}

    def refused(self, entry: AuditEntry) -> None:
        """Append a refusal in the background."""
        task = asyncio.get_running_loop().create_task(self._audit.record(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def users_api(settings: Settings, catalogue: Catalogue) -> UsersApi:
    """The users service's whole API."""
    database = Database(settings.dsn("users"), max_size=6)
    keys, issuer = KeyRing(settings.keys_dir()), settings.require_issuer()
    keys.signing_key()  # fail at start, naming the folder, when there is no key
    audit = AuditLog(database)
    accounts = Accounts(database, lockout_policy(settings))
    devices = Devices(database)
    tokens = TokenEndpoint(TokenIssuer(keys, issuer, lifetime_s=settings.access_token_lifetime_s), accounts, devices,
                           ServiceClients(database), Sessions(database, settings.refresh_token_lifetime_s), audit)
    intake = AuditIntake(audit, catalogue)
    guard = Guard(TokenVerifier(local_keys(keys), issuer), RULES + (EVENT_DELIVERY,), source=SOURCE,
                  on_refused=intake.refused)
    receive = cloudevent_endpoint(intake.receive, settings.max_event_bytes)
    return UsersApi(issuer=issuer, keys=keys, tokens=tokens, accounts=accounts, devices=devices, audit=audit,
                    guard=guard, receive_event=receive if settings.delivery_auth == "mesh" else guard.protect(receive),
                    address_header=settings.client_address_header)
