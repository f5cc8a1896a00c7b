"""The weather settings read by shared/config.py."""

from __future__ import annotations

import pytest

from shared.config import (
    DEFAULT_WEATHER_STATIONS,
    ConfigError,
    Settings,
    WeatherStation,
)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.weather_provider == "replay"
    assert settings.weather_url == "https://api.open-meteo.com/v1/forecast"
    assert settings.weather_stations == DEFAULT_WEATHER_STATIONS and len(DEFAULT_WEATHER_STATIONS) == 3


def test_from_the_environment() -> None:
    settings = Settings.from_env({
        "SMARTGRID_WEATHER_PROVIDER": "open-meteo",
        "SMARTGRID_WEATHER_URL": "http://127.0.0.1:9/v1/forecast",
        "SMARTGRID_WEATHER_STATIONS": "a:north:53.5:10, b:south:48.1:11.6",
    })
    assert settings.weather_provider == "open-meteo"
    assert settings.weather_url == "http://127.0.0.1:9/v1/forecast"
    assert settings.weather_stations == (WeatherStation("a", "north", 53.5, 10.0),
                                         WeatherStation("b", "south", 48.1, 11.6))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SMARTGRID_WEATHER_PROVIDER", "dwd", "expected one of replay, open-meteo, found 'dwd'"),
        ("SMARTGRID_WEATHER_STATIONS", "a:north:53.5", "expected id:region:latitude:longitude, found 'a:north:53.5'"),
        ("SMARTGRID_WEATHER_STATIONS", "a:north:x:10", "expected id:region:latitude:longitude, found 'a:north:x:10'"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: {message}$"):
        Settings.from_env({name: value})
