"""The OAuth 2.0 token and revocation endpoints (RFC 6749, RFC 7009), form-encoded.

Grants: `password` (users, through the public client PUBLIC_CLIENT), `client_credentials` (devices
and platform services, authenticated by HTTP Basic or `client_id`/`client_secret` in the form) and
`refresh_token` (rotated on every use: shared/users/sessions.py). Every outcome is audited. Errors
are RFC 6749 section 5.2 JSON: `invalid_request`, `invalid_client` (401), `invalid_grant`,
`unauthorized_client`, `unsupported_grant_type`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from shared.audit.chain import AuditEntry
from shared.audit.log import AuditLog
from shared.auth.tokens import TokenGrant, TokenIssuer
from shared.users.accounts import Accounts
from shared.users.devices import Devices
from shared.users.errors import OAuthError
from shared.users.services import ServiceClients
from shared.users.sessions import Sessions

PUBLIC_CLIENT = "smartgrid"
GRANT_TYPES = ("password", "client_credentials", "refresh_token")
SOURCE = "users"


@dataclass(frozen=True)
class Client:
    """The client of a token request: its id and, once authenticated, what it is."""

    client_id: str
    secret: str | None
    basic: bool


class TokenEndpoint:
    """Answers token and revocation requests."""

    def __init__(self, issuer: TokenIssuer, accounts: Accounts, devices: Devices, services: ServiceClients,
                 sessions: Sessions, audit: AuditLog) -> None:
        self._issuer = issuer
        self._accounts = accounts
        self._devices = devices
        self._services = services
        self._sessions = sessions
        self._audit = audit

    async def token(self, form: Mapping[str, str], authorization: str | None, address: str) -> dict[str, Any]:
        """The token response of one request; raises OAuthError."""
        grant_type = _required(form, "grant_type")
        client = client_of(form, authorization)
        if grant_type == "password":
            return await self._password(form, client, address)
        if grant_type == "client_credentials":
            return await self._client_credentials(client)
        if grant_type == "refresh_token":
            return await self._refresh(form, client)
        raise OAuthError("unsupported_grant_type", f"expected one of {', '.join(GRANT_TYPES)}, found {grant_type!r}")

    async def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        """Revoke a refresh token's session (RFC 7009); access tokens expire on their own."""
        token = _required(form, "token")
        client = client_of(form, authorization)
        if client.client_id != PUBLIC_CLIENT:
            raise OAuthError("invalid_client", "expected the client that was issued the token", 401)
        await self._sessions.revoke(token, actor=client.client_id)

    async def _password(self, form: Mapping[str, str], client: Client, address: str) -> dict[str, Any]:
        if client.client_id != PUBLIC_CLIENT or client.secret:
            raise OAuthError("unauthorized_client", f"expected the public client {PUBLIC_CLIENT!r} for the password "
                                                    f"grant, found {client.client_id!r}")
        username, password = _required(form, "username"), _required(form, "password")
        login = await self._accounts.login(username, password, address)
        if not login.ok:
            raise OAuthError("invalid_grant", "Invalid user credentials")
        grant = TokenGrant(username, "user", (login.role,), client.client_id)
        response = self._response(grant, refresh_token=await self._sessions.start(username, client.client_id))
        await self._audit.record(AuditEntry(username, "token.issue", "success", SOURCE, username,
                                            {"grant_type": "password", "client_id": client.client_id}))
        return response

    async def _client_credentials(self, client: Client) -> dict[str, Any]:
        if client.secret is None:
            await self._refused(client, "client_credentials", "no client secret")
            raise OAuthError("invalid_client", "expected client authentication (HTTP Basic or client_secret)", 401)
        device_kind = await self._devices.authenticate(client.client_id, client.secret)
        if device_kind is not None:
            grant = TokenGrant(client.client_id, "device", ("device",), client.client_id, device_kind)
        else:
            roles = await self._services.authenticate(client.client_id, client.secret)
            if roles is None:
                await self._refused(client, "client_credentials", "unknown client or wrong secret")
                raise OAuthError("invalid_client", "Invalid client or Invalid client credentials", 401)
            grant = TokenGrant(client.client_id, "service", roles, client.client_id)
        await self._audit.record(AuditEntry(client.client_id, "token.issue", "success", SOURCE, client.client_id,
                                            {"grant_type": "client_credentials", "kind": grant.kind}))
        return self._response(grant)

    async def _refresh(self, form: Mapping[str, str], client: Client) -> dict[str, Any]:
        refreshed = await self._sessions.rotate(_required(form, "refresh_token"), client.client_id)
        grant = TokenGrant(refreshed.username, "user", (refreshed.role,), client.client_id)
        return self._response(grant, refresh_token=refreshed.refresh_token)

    async def _refused(self, client: Client, grant_type: str, reason: str) -> None:
        await self._audit.record(AuditEntry(client.client_id, "token.issue", "failure", SOURCE, client.client_id,
                                            {"grant_type": grant_type, "reason": reason}))

    def _response(self, grant: TokenGrant, *, refresh_token: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self._issuer.issue(grant), "token_type": "Bearer",
                                "expires_in": self._issuer.lifetime_s, "scope": " ".join(grant.roles)}
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body


def client_of(form: Mapping[str, str], authorization: str | None) -> Client:
    """The client named by HTTP Basic (RFC 6749 2.3.1: form-urlencoded id and secret) or by the form."""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            client_id, sep, secret = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "expected HTTP Basic credentials in base64, found others", 401) from None
        if not sep:
            raise OAuthError("invalid_client", "expected client_id:client_secret in HTTP Basic, found no ':'", 401)
        return Client(unquote_plus(client_id), unquote_plus(secret), basic=True)
    return Client(form.get("client_id") or PUBLIC_CLIENT, form.get("client_secret"), basic=False)


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"expected the form parameter {name}, found none")
    return value
