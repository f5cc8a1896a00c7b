"""One weather observation of a station, as stored and as emitted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.config import WeatherStation

WEATHER_EVENT_TYPE = "com.smartgrid.weather.observation"


class WeatherUnavailable(ConnectionError):
    """Raised when a weather provider cannot answer now; worth retrying later."""


class WeatherApiError(ValueError):
    """Raised when a weather provider's answer is final and unusable; names the field."""


@dataclass(frozen=True)
class Observation:
    """The measures of one station at one time; None where the provider has no value."""

    station_id: str
    region: str
    timestamp: datetime
    temperature_c: float | None
    ghi_w_m2: float | None
    wind_speed_m_s: float | None
    cloud_cover_pct: float | None
    relative_humidity_pct: float | None

    def event_data(self) -> dict[str, Any]:
        """The `com.smartgrid.weather.observation` data of this observation."""
        return {
            "station_id": self.station_id,
            "region": self.region,
            "timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "temperature_c": self.temperature_c,
            "ghi_w_m2": self.ghi_w_m2,
            "wind_speed_m_s": self.wind_speed_m_s,
            "cloud_cover_pct": self.cloud_cover_pct,
            "relative_humidity_pct": self.relative_humidity_pct,
        }


class Provider(Protocol):
    """Where observations come from: one adapter per provider."""

    async def observe(self, stations: tuple[WeatherStation, ...], at: datetime) -> list[Observation]:
        """The current observation of each station (`at`: the time of the request)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
