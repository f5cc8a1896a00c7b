"""The weather function's objects, built from the settings."""

from __future__ import annotations

from shared.config import Settings
from shared.resilience import Downstreams
from shared.sink import EventSink
from shared.stores import postgres
from shared.stores.postgres import Database
from shared.weather.collector import WeatherCollector
from shared.weather.observation import Provider
from shared.weather.openmeteo import OpenMeteo, is_transient
from shared.weather.replay import Replay
from shared.weather.store import WeatherStore


def provider(settings: Settings, downstreams: Downstreams) -> Provider:
    """The provider adapter SMARTGRID_WEATHER_PROVIDER names."""
    if settings.weather_provider == "open-meteo":
        return OpenMeteo(settings.weather_url, downstreams.get("weather-api", is_transient))
    return Replay()


def weather_collector(settings: Settings, source: str) -> WeatherCollector:
    """The collector of the weather function; `source` is the CloudEvents source of its events."""
    downstreams = Downstreams.from_settings(settings)
    return WeatherCollector(
        provider(settings, downstreams),
        settings.weather_stations,
        WeatherStore(Database(settings.dsn("analytics"), max_size=2)),
        EventSink(settings.require_sink(), downstreams),
        downstreams.get("postgres:analytics", postgres.is_transient),
        source,
    )
