"""weather: the PingSource `weather-ping`'s sink (any `dev.knative.sources.ping`).

Fetches each station's current observation (SMARTGRID_WEATHER_PROVIDER: the DWD test reference
year replay or an Open-Meteo-compatible API), stores it in the analytics database
(`weather_observations`) and emits `com.smartgrid.weather.observation` to the broker, keyed by
station. 200 when done; 400 for another event type; 503 when the API, the database or the broker
is unavailable (the ping is retried); 500 when the API's answer is unusable.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.function import function_handler
from shared.http import cloudevent_endpoint
from shared.weather.observation import WeatherUnavailable
from shared.weather.wiring import weather_collector

settings = Settings.from_env()
collector = weather_collector(settings, source="/smartgrid/functions/weather")
endpoint = cloudevent_endpoint(collector.collect, settings.max_event_bytes, unavailable=(WeatherUnavailable,))
serve = function_handler(settings, "/smartgrid/functions/weather", events=endpoint)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Collect the weather observations of one ping."""
    return await serve(request)
