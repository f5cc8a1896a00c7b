"""The weather function through its real HTTP CloudEvents interface (functions-framework in a subprocess)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import pytest

from local.functions import Function
from local.servers.process import free_port
from shared.cloudevents import PING_EVENT_TYPE, CloudEvent, new_event, to_http_binary
from shared.validation.catalogue import Catalogue
from shared.weather.observation import WEATHER_EVENT_TYPE
from tests.identity import Endpoint, Identity
from tests.integration.eventing.subscriber import Subscriber

pytestmark = pytest.mark.integration
SOURCE = Path(__file__).resolve().parents[2] / "functions" / "weather" / "main.py"
STATIONS = "w-hh:north:53.63:9.99,w-b:east:52.56:13.31,w-m:south:48.35:11.81"


@pytest.fixture
async def weather(broker: Subscriber, domain_dsns: dict[str, str], identity: Identity,
                  tmp_path: Path) -> AsyncIterator[Endpoint]:
    """The weather function (replay provider) running under functions-framework, with the data plane's token."""
    env = {"SMARTGRID_DSN_ANALYTICS": domain_dsns["analytics"], "SMARTGRID_WEATHER_PROVIDER": "replay",
           "SMARTGRID_WEATHER_STATIONS": STATIONS, **identity.env}
    port = free_port()
    process = Function("weather", SOURCE).process(port, f"{broker.url}/broker", env, tmp_path / "weather.log")
    await asyncio.to_thread(process.start, port)
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", identity.delivery)
    finally:
        await asyncio.to_thread(process.stop)


def ping(time: datetime, id: str = "ping-1") -> CloudEvent:
    return new_event(PING_EVENT_TYPE, "/apis/v1/namespaces/smartgrid/pingsources/weather-ping", id,
                     {"job": "weather-observations"}, time=time.isoformat().replace("+00:00", "Z"))


async def post(endpoint: Endpoint, event: CloudEvent) -> tuple[int, dict]:
    headers, body = to_http_binary(event)
    async with aiohttp.ClientSession() as session, session.post(
            endpoint.url, data=body, headers={**headers, **endpoint.headers}) as response:
        return response.status, await response.json()


def rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT station_id, region, ts, temperature_c, ghi_w_m2 FROM weather_observations"
                            " WHERE station_id LIKE 'w-%' ORDER BY station_id, ts").fetchall()


async def test_a_ping_stores_and_emits_observations(
    weather: Endpoint, broker: Subscriber, domain_dsns: dict[str, str]
) -> None:
    tick = datetime.now(UTC).replace(second=0, microsecond=0)
    assert await post(weather, ping(tick)) == (200, {"observations": 3})
    received = await broker.wait_for("broker", 3)
    catalogue = Catalogue.load()
    for delivery in received:
        event = delivery.event
        assert event.type == WEATHER_EVENT_TYPE
        data = catalogue.validate(WEATHER_EVENT_TYPE, event.json())
        assert event.attributes["partitionkey"] == data["station_id"]
        assert data["timestamp"] == tick
    assert sorted(r.event.attributes["partitionkey"] for r in received) == ["w-b", "w-hh", "w-m"]

    stored = rows(domain_dsns["analytics"])
    assert [(r[0], r[1], r[2]) for r in stored] == [("w-b", "east", tick), ("w-hh", "north", tick),
                                                     ("w-m", "south", tick)]
    assert all(r[3] is not None and r[4] is not None for r in stored)

    assert (await post(weather, ping(tick, "ping-1")))[0] == 200, "a redelivered ping"
    assert rows(domain_dsns["analytics"]) == stored, "is stored once"
    ids = {r.event.id for r in await broker.wait_for("broker", 6)}
    assert len(ids) == 3, "and emitted with the same event ids"


async def test_other_events_are_refused(weather: Endpoint) -> None:
    status, answer = await post(weather, new_event("com.smartgrid.sensor.reading", "/t", "x-1", {"a": 1}))
    assert status == 400
    assert answer["field"] == "type", answer
