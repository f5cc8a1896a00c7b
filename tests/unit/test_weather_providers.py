"""Weather provider adapters: Open-Meteo over real local HTTP, and the DWD reference-year replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from shared.config import DEFAULT_WEATHER_STATIONS, Settings, WeatherStation
from shared.resilience import Downstreams
from shared.weather.observation import WeatherApiError, WeatherUnavailable
from shared.weather.openmeteo import CURRENT, OpenMeteo, is_transient, parse_response
from shared.weather.replay import (
    Replay,
    hour_key,
    nearest,
    reference_years,
    try_data_dir,
)

STATIONS = (WeatherStation("s-1", "north", 53.63, 9.99), WeatherStation("s-2", "south", 48.35, 11.81))
SETTINGS = Settings(retry_attempts=3, retry_initial_delay_s=0.001, retry_max_delay_s=0.001)


def location(temperature: Any = 3.4, time: str = "2026-11-22T10:00") -> dict[str, Any]:
    """One location of an Open-Meteo answer, shaped as the API returns it."""
    return {
        "latitude": 53.625, "longitude": 10.0, "generationtime_ms": 0.05, "utc_offset_seconds": 0,
        "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 11.0,
        "current_units": {"time": "iso8601", "interval": "seconds", "temperature_2m": "°C",
                          "shortwave_radiation": "W/m²", "wind_speed_10m": "m/s", "cloud_cover": "%",
                          "relative_humidity_2m": "%"},
        "current": {"time": time, "interval": 900, "temperature_2m": temperature, "shortwave_radiation": 112.0,
                    "wind_speed_10m": 4.2, "cloud_cover": 87, "relative_humidity_2m": 91},
    }


@dataclass
class CannedApi:
    """A local HTTP server answering each GET with the next scripted (status, JSON) and keeping the queries."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        status, body = self.answers.pop(0)
        return web.json_response(body, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[CannedApi, str]]:
    canned = CannedApi()
    app = web.Application()
    app.router.add_get("/v1/forecast", canned.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield canned, f"http://127.0.0.1:{runner.addresses[0][1]}/v1/forecast"
    await runner.cleanup()


async def observe(url: str) -> list:
    provider = OpenMeteo(url, Downstreams.from_settings(SETTINGS).get("weather-api", is_transient))
    try:
        return await provider.observe(STATIONS, datetime.now(UTC))
    finally:
        await provider.close()


async def test_open_meteo_request_and_answer(api: tuple[CannedApi, str]) -> None:
    canned, url = api
    canned.answers = [(200, [location(), location(-1.5, "2026-11-22T10:15")])]
    first, second = await observe(url)
    assert canned.queries == [{"latitude": "53.63,48.35", "longitude": "9.99,11.81", "current": ",".join(CURRENT),
                               "wind_speed_unit": "ms", "timezone": "GMT"}]
    assert first.event_data() == {
        "station_id": "s-1", "region": "north", "timestamp": "2026-11-22T10:00:00Z", "temperature_c": 3.4,
        "ghi_w_m2": 112.0, "wind_speed_m_s": 4.2, "cloud_cover_pct": 87.0, "relative_humidity_pct": 91.0,
    }
    assert (second.station_id, second.temperature_c, second.timestamp) == (
        "s-2", -1.5, datetime(2026, 11, 22, 10, 15, tzinfo=UTC))


async def test_open_meteo_retries_transient_answers(api: tuple[CannedApi, str]) -> None:
    canned, url = api
    canned.answers = [(503, {"error": True}), (429, {"error": True}), (200, [location(), location()])]
    assert len(await observe(url)) == 2
    assert len(canned.queries) == 3


async def test_open_meteo_gives_up(api: tuple[CannedApi, str]) -> None:
    canned, url = api
    canned.answers = [(503, {})] * 3
    with pytest.raises(WeatherUnavailable, match="answered 503"):
        await observe(url)
    canned.answers = [(400, {"error": True, "reason": "Latitude must be in range"})]
    with pytest.raises(WeatherApiError, match="refused the request: 400"):
        await observe(url)
    assert len(canned.queries) == 4, "a 400 is not retried"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([location()], r"^response: expected 2 location\(s\), found 1$"),
        ([location(), {"hourly": {}}], r"^response\[1\]\.current: expected an object, found NoneType$"),
        ([location(), location(time="yesterday")], r"^response\[1\]\.current\.time: expected an ISO-8601 time"),
        ([location("warm"), location()], r"^response\[0\]\.current\.temperature_2m: expected a number, found 'warm'$"),
    ],
)
def test_open_meteo_bad_answers_name_the_field(payload: Any, message: str) -> None:
    with pytest.raises(WeatherApiError, match=message):
        parse_response(payload, STATIONS)


def test_open_meteo_single_location_and_missing_values() -> None:
    (only,) = parse_response(location(None), STATIONS[:1])
    assert only.temperature_c is None and only.ghi_w_m2 == 112.0


@pytest.mark.parametrize(
    ("at", "key"),
    [
        (datetime(2026, 7, 1, 11, 20, tzinfo=UTC), (7, 1, 13)),  # 12:20 CET: the hour ending 13:00
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), (1, 1, 1)),  # already 1 January in CET
        (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), (2, 28, 14)),  # leap day reads 28 February
    ],
)
def test_replay_maps_now_to_the_same_hour_of_the_year(at: datetime, key: tuple[int, int, int]) -> None:
    assert hour_key(at) == key


def test_replay_uses_the_nearest_reference_year() -> None:
    years = reference_years(try_data_dir())
    assert len(years) == 15 and all(len(year.hours) == 8760 for year in years)
    hamburg, berlin, munich = (nearest(years, station).path.name for station in DEFAULT_WEATHER_STATIONS)
    assert (hamburg, berlin, munich) == ("TRY2010_03_Jahr.dat", "TRY2010_04_Jahr.dat", "TRY2010_13_Jahr.dat")


async def test_replay_observations() -> None:
    summer_noon = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    winter_night = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
    summer = await Replay().observe(DEFAULT_WEATHER_STATIONS, summer_noon)
    winter = await Replay().observe(DEFAULT_WEATHER_STATIONS, winter_night)
    assert [o.station_id for o in summer] == [s.id for s in DEFAULT_WEATHER_STATIONS]
    assert all(o.timestamp == summer_noon for o in summer)
    assert all(o.ghi_w_m2 and o.ghi_w_m2 > 0 for o in summer)
    assert all(o.ghi_w_m2 == 0 for o in winter)
    assert sum(o.temperature_c or 0 for o in summer) > sum(o.temperature_c or 0 for o in winter)
    for o in summer + winter:
        assert o.cloud_cover_pct is None or 0 <= o.cloud_cover_pct <= 100
        assert o.relative_humidity_pct is not None and 0 < o.relative_humidity_pct <= 100
