"""The device registry as other functions see it: `GET /api/v1/devices/{id}` of the users service,
with the function's own token (role `registry-reader`), cached.

A device's answer is kept `ttl_s` (SMARTGRID_REGISTRY_CACHE_SECONDS; so a revocation takes effect
within it), an unknown device's NEGATIVE_TTL_S; concurrent lookups of one device make one request.
Calls go through the downstream `users` (retries, breaker); an unreachable registry raises
RegistryUnavailable (answered 503, retried).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from shared.auth.client import ServiceToken, TokenRefused, TokenUnavailable
from shared.resilience import Downstream

NEGATIVE_TTL_S = 5.0


class RegistryUnavailable(RuntimeError):
    """Raised when the device registry could not be asked: retry later."""


@dataclass(frozen=True)
class RegisteredDevice:
    """A device as the registry knows it; a gateway with the meters registered behind it."""

    device_id: str
    kind: str
    gateway_id: str | None
    revoked: bool
    meters: frozenset[str]


def _transient(error: BaseException) -> bool:
    return isinstance(error, RegistryUnavailable)


class DeviceRegistry:
    """Cached lookups of devices."""

    def __init__(self, devices_url: str, token: ServiceToken, users: Downstream, *, ttl_s: float,
                 timeout_s: float = 5.0) -> None:
        self._url = devices_url.rstrip("/")
        self._token = token
        self._users = users
        self._ttl_s = ttl_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache: dict[str, tuple[float, RegisteredDevice | None]] = {}  # id -> (fetched at, answer)
        self._in_flight: dict[str, asyncio.Future[RegisteredDevice | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def device(self, device_id: str, *, fresher_than_s: float | None = None) -> RegisteredDevice | None:
        """The device, None when it is not registered; `fresher_than_s` refetches an older cached answer."""
        cached = self._cache.get(device_id)
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < (self._ttl_s if cached[1] else NEGATIVE_TTL_S) and (fresher_than_s is None or age <= fresher_than_s):
                return cached[1]
        pending = self._in_flight.get(device_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RegisteredDevice | None] = asyncio.get_running_loop().create_future()
        self._in_flight[device_id] = future
        try:
            found = await self._users.call(lambda: self._fetch(device_id), what=f"look up device {device_id}")
            self._cache[device_id] = (time.monotonic(), found)
            future.set_result(found)
            return found
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._in_flight[device_id]

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def _fetch(self, device_id: str) -> RegisteredDevice | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            token = await self._token.get()
            async with self._session.get(f"{self._url}/{device_id}",
                                         headers={"Authorization": f"Bearer {token}"}) as response:
                status, body = response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, TokenUnavailable) as error:
            raise RegistryUnavailable(f"device registry at {self._url}: {str(error) or type(error).__name__}") from None
        except TokenRefused as error:
            raise RegistryUnavailable(str(error)) from None
        if status == 404:
            return None
        if status == 401:
            self._token.forget()
        if status != 200:
            raise RegistryUnavailable(f"device registry at {self._url} answered {status}: {body}")
        return RegisteredDevice(body["device_id"], body["kind"], body.get("gateway_id"), bool(body.get("revoked")),
                                frozenset(body.get("meters") or ()))
