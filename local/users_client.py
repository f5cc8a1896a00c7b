"""A client of the users service for the command line, the demo and the tests: admin calls and tokens.

The command line acts as a platform service client: SMARTGRID_CLIENT_ID / SMARTGRID_CLIENT_SECRET with
SMARTGRID_AUTH_ISSUER when set, else the running `smartgrid up`'s own `smartgrid-cli` client (role
admin) from its state file.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from local.state import PlatformState
from shared.auth.client import ServiceToken, token_endpoint
from shared.config import Settings


class UsersApiError(RuntimeError):
    """Raised when the users service refused a call; the message holds its status and JSON error."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") or body.get("error_description") if isinstance(body, dict) else None
        super().__init__(f"{status}: {message or body}")
        self.status = status
        self.body = body


def cli_token(settings: Settings) -> ServiceToken:
    """The command line's token: its own client from the environment, else the running platform's."""
    if settings.client_id and settings.client_secret and settings.auth_issuer:
        return ServiceToken(token_endpoint(settings.auth_issuer), settings.client_id, settings.client_secret)
    state = PlatformState.load(settings.state_dir)
    return ServiceToken(token_endpoint(state.endpoints["auth"]), state.client["client_id"],
                        state.client["client_secret"])


def issuer_of(settings: Settings) -> str:
    """The issuer: SMARTGRID_AUTH_ISSUER, else the running platform's `auth` endpoint."""
    return settings.auth_issuer or PlatformState.load(settings.state_dir).endpoints["auth"]


class UsersClient:
    """Calls the users service's admin API with a ServiceToken (or a user's access token)."""

    def __init__(self, issuer: str, token: ServiceToken | str, session: aiohttp.ClientSession) -> None:
        self.issuer = issuer.rstrip("/")
        self.base = self.issuer.removesuffix("/api/v1/auth")
        self._token = token
        self._session = session

    async def create_user(self, username: str, role: str, password: str) -> dict[str, Any]:
        """Create a user."""
        return await self._call("POST", "/api/v1/users", {"username": username, "role": role, "password": password})

    async def users(self) -> list[dict[str, Any]]:
        """Every user."""
        return (await self._call("GET", "/api/v1/users"))["users"]

    async def update_user(self, username: str, **changes: Any) -> dict[str, Any]:
        """Change a user's role, disabled, password or lock."""
        return await self._call("PATCH", f"/api/v1/users/{username}", changes)

    async def register(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Register devices (`device_id`, `kind`, `gateway_id`); the answers carry the secrets, once."""
        return (await self._call("POST", "/api/v1/devices", {"devices": devices}))["devices"]

    async def devices(self, *, kind: str | None = None, gateway: str | None = None) -> list[dict[str, Any]]:
        """Registered devices, optionally of one kind or behind one gateway."""
        params = {name: value for name, value in (("kind", kind), ("gateway", gateway)) if value is not None}
        return (await self._call("GET", "/api/v1/devices", params=params))["devices"]

    async def device(self, device_id: str) -> dict[str, Any]:
        """One device."""
        return await self._call("GET", f"/api/v1/devices/{device_id}")

    async def new_secret(self, device_id: str) -> str:
        """A new client secret for a device with its own client (the old one stops working at once)."""
        return (await self._call("POST", f"/api/v1/devices/{device_id}/secret"))["client_secret"]

    async def revoke(self, device_id: str) -> dict[str, Any]:
        """Revoke a device."""
        return await self._call("DELETE", f"/api/v1/devices/{device_id}")

    async def audit(self, **params: str) -> dict[str, Any]:
        """One page of the audit log (`actor`, `action`, `from`, `to`, `limit`, `after`)."""
        return await self._call("GET", "/api/v1/audit", params=params)

    async def client_token(self, client_id: str, secret: str) -> dict[str, Any]:
        """A client_credentials token response for a device or service client."""
        return await self._form({"grant_type": "client_credentials"},
                                {"Authorization": aiohttp.encode_basic_auth(client_id, secret)})

    async def password_token(self, username: str, password: str) -> dict[str, Any]:
        """A password-grant token response for a user (public client `smartgrid`)."""
        return await self._form({"grant_type": "password", "username": username, "password": password,
                                 "client_id": "smartgrid"})

    async def _form(self, form: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
        async with self._session.post(f"{self.issuer}/token", data=form, headers=headers) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise UsersApiError(response.status, body)
            return body

    async def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        token = self._token if isinstance(self._token, str) else await self._token.get()
        async with self._session.request(method, self.base + path, json=body, params=params,
                                         headers={"Authorization": f"Bearer {token}"}) as response:
            answer = await response.json(content_type=None) if response.status != 204 else None
            if response.status >= 300:
                raise UsersApiError(response.status, answer)
            return answer
