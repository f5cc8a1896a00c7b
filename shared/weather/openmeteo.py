"""Provider adapter: an Open-Meteo-compatible forecast API (`current` values of each station)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp

from shared.config import WeatherStation
from shared.resilience import Downstream, retryable_status
from shared.weather.observation import Observation, WeatherApiError, WeatherUnavailable

CURRENT = ("temperature_2m", "shortwave_radiation", "wind_speed_10m", "cloud_cover", "relative_humidity_2m")


def is_transient(error: BaseException) -> bool:
    """True for failures of the weather API worth retrying."""
    return isinstance(error, WeatherUnavailable)


def request_params(stations: tuple[WeatherStation, ...]) -> dict[str, str]:
    """The query of one request for every station's current values (wind in m/s, times in UTC)."""
    return {
        "latitude": ",".join(f"{s.latitude:g}" for s in stations),
        "longitude": ",".join(f"{s.longitude:g}" for s in stations),
        "current": ",".join(CURRENT),
        "wind_speed_unit": "ms",
        "timezone": "GMT",
    }


def parse_response(payload: Any, stations: tuple[WeatherStation, ...]) -> list[Observation]:
    """The observations in an answer: one object per location, a list when there are several."""
    locations = payload if isinstance(payload, list) else [payload]
    if len(locations) != len(stations):
        raise WeatherApiError(f"response: expected {len(stations)} location(s), found {len(locations)}")
    return [_observation(location, station, index) for index, (location, station) in
            enumerate(zip(locations, stations, strict=True))]


def _observation(location: Any, station: WeatherStation, index: int) -> Observation:
    current = location.get("current") if isinstance(location, dict) else None
    if not isinstance(current, dict):
        raise WeatherApiError(f"response[{index}].current: expected an object, found {type(current).__name__}")
    time = current.get("time")
    try:
        timestamp = datetime.fromisoformat(str(time)).replace(tzinfo=UTC)
    except ValueError:
        raise WeatherApiError(f"response[{index}].current.time: expected an ISO-8601 time, found {time!r}") from None
    values = [_number(current, name, index) for name in CURRENT]
    return Observation(station.id, station.region, timestamp, *values)


def _number(current: dict[str, Any], name: str, index: int) -> float | None:
    value = current.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WeatherApiError(f"response[{index}].current.{name}: expected a number, found {value!r}")
    return float(value)


class OpenMeteo:
    """Fetches the stations' current weather in one GET through the `weather-api` downstream."""

    def __init__(self, url: str, downstream: Downstream, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._downstream = downstream
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def observe(self, stations: tuple[WeatherStation, ...], at: datetime) -> list[Observation]:
        """The current observation of each station, as the API reports it."""
        payload = await self._downstream.call(lambda: self._get(request_params(stations)), what=f"GET {self.url}")
        return parse_response(payload, stations)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def _get(self, params: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self.url, params=params) as response:
                if response.status == 200:
                    return await response.json(content_type=None)
                text = (await response.text())[:300]
        except (aiohttp.ClientError, TimeoutError) as error:
            reason = str(error) or type(error).__name__
            raise WeatherUnavailable(f"weather API at {self.url} unreachable: {reason}") from None
        except ValueError as error:
            raise WeatherApiError(f"response: expected JSON, found {error}") from None
        if retryable_status(response.status):
            raise WeatherUnavailable(f"weather API at {self.url} answered {response.status}: {text}")
        raise WeatherApiError(f"weather API at {self.url} refused the request: {response.status} {text}")
