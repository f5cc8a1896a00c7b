"""The sensors' access tokens: `client_credentials` with each sensor's id and secret at the platform's
token endpoint, one per sensor, cached and renewed before it expires (shared/auth/client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from local.demo.registration import COLD_START_S, RegistrationError
from shared.auth.client import ServiceToken, TokenRefused, TokenUnavailable

TAKE_CONCURRENCY = 16


class SensorTokens:
    """Each sensor's current token; counts the tokens taken."""

    def __init__(self, token_url: str, secrets: Mapping[str, str]) -> None:
        self._tokens = {sensor: ServiceToken(token_url, sensor, secret, timeout_s=COLD_START_S)
                        for sensor, secret in secrets.items()}
        self._last: dict[str, str] = {}
        self.taken = 0

    async def get(self, sensor: str) -> str:
        """The sensor's token (taken when none is cached or it is about to expire); raises TokenRefused
        or TokenUnavailable, and KeyError for a sensor without a secret."""
        token = self._tokens.get(sensor)
        if token is None:
            raise KeyError(f"expected a sensor of the registered fleet, found {sensor!r}")
        value = await token.get()
        if self._last.get(sensor) != value:
            self._last[sensor] = value
            self.taken += 1
        return value

    def forget(self, sensor: str) -> None:
        """Drop the sensor's cached token (`ingest` refused it), so that the next `get` takes another."""
        self._tokens[sensor].forget()

    async def take_all(self, concurrency: int = TAKE_CONCURRENCY) -> None:
        """Take every sensor's first token before sending; raises RegistrationError naming a sensor refused."""
        slots = asyncio.Semaphore(concurrency)

        async def take(sensor: str) -> None:
            async with slots:
                try:
                    await self.get(sensor)
                except (TokenRefused, TokenUnavailable) as error:
                    raise RegistrationError(f"sensor {sensor} could not take a token: {error}") from None

        await asyncio.gather(*(take(sensor) for sensor in self._tokens))
