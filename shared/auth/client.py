"""A platform service's own access token: `client_credentials` at the issuer's token endpoint, cached.

The token is reused until EARLY_RENEW_S before it expires; a failed request raises KeysUnavailable's
sibling TokenUnavailable (the caller answers 503 or retries), a refused one TokenRefused.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

EARLY_RENEW_S = 60.0


class TokenUnavailable(RuntimeError):
    """Raised when the token endpoint could not be reached or failed: retry later."""


class TokenRefused(RuntimeError):
    """Raised when the token endpoint refused the client's credentials."""


def token_endpoint(issuer: str) -> str:
    """The token endpoint of an issuer of this platform."""
    return f"{issuer.rstrip('/')}/token"


class ServiceToken:
    """The cached access token of one OAuth client."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, timeout_s: float = 10.0) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._authorization = {"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid access token, fetched when none is cached or it is about to expire."""
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                await self._fetch()
        assert self._token is not None
        return self._token

    def forget(self) -> None:
        """Drop the cached token (a server refused it), so the next `get` fetches another."""
        self._token = None

    async def _fetch(self) -> None:
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.post(self.token_url, data={"grant_type": "client_credentials"},
                                        headers=self._authorization) as response:
                    body = await response.json(content_type=None)
                    status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise TokenUnavailable(f"token endpoint {self.token_url}: {str(error) or type(error).__name__}") from None
        if status >= 500 or status == 429:
            raise TokenUnavailable(f"token endpoint {self.token_url} answered {status}")
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise TokenRefused(f"token endpoint {self.token_url} refused client {self.client_id!r}: {status} {body}")
        self._token = body["access_token"]
        self._renew_at = time.monotonic() + max(0.0, float(body.get("expires_in", 300)) - EARLY_RENEW_S)
