"""The issuer's public keys, fetched from its JWKS URL and cached.

A token whose `kid` is not cached makes one refresh (a rotation published a new key), at most once
every `min_refresh_s`, so a flood of made-up kids cannot make a flood of fetches; the keys are also
refreshed after `max_age_s`. An unreachable JWKS raises KeysUnavailable (answered 503).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt

from shared.auth.tokens import InvalidToken, KeysUnavailable


class RemoteJwks:
    """Keys by `kid` from one JWKS URL."""

    def __init__(self, url: str, *, min_refresh_s: float = 5.0, max_age_s: float = 300.0, timeout_s: float = 5.0):
        self.url = url
        self._min_refresh_s = min_refresh_s
        self._max_age_s = max_age_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> Any:
        """The public key of `kid`; raises InvalidToken for a kid the issuer does not publish."""
        now = time.monotonic()
        stale = now - self._fetched_at > self._max_age_s
        if stale or (kid not in self._keys and now - self._fetched_at > self._min_refresh_s):
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken(f"expected a kid of the issuer's JWKS, found {kid!r}")
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at <= self._min_refresh_s:
                return  # another caller just refreshed
            try:
                async with aiohttp.ClientSession(timeout=self._timeout) as session:
                    async with session.get(self.url) as response:
                        response.raise_for_status()
                        document = await response.json(content_type=None)
                keys = {key.key_id: key.key for key in jwt.PyJWKSet.from_dict(document).keys if key.key_id}
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, jwt.PyJWTError) as error:
                if self._keys:  # keep serving the known keys while the issuer is away
                    self._fetched_at = time.monotonic()
                    return
                raise KeysUnavailable(f"JWKS at {self.url}: {str(error) or type(error).__name__}") from None
            self._keys, self._fetched_at = keys, time.monotonic()
