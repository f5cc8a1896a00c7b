"""On a ping: fetch every station's observation, store it, emit it to the broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.cloudevents import PING_EVENT_TYPE, CloudEvent, InvalidEvent, new_event
from shared.config import WeatherStation
from shared.resilience import Downstream
from shared.sink import EventSink
from shared.weather.observation import WEATHER_EVENT_TYPE, Observation, Provider
from shared.weather.store import WeatherStore


class WeatherCollector:
    """Turns each ping into stored rows and `com.smartgrid.weather.observation` events."""

    def __init__(self, provider: Provider, stations: tuple[WeatherStation, ...], store: WeatherStore,
                 sink: EventSink, database: Downstream, source: str) -> None:
        self.provider = provider
        self._stations = stations
        self._store = store
        self._sink = sink
        self._database = database
        self._source = source

    async def collect(self, ping: CloudEvent) -> dict[str, Any]:
        """Handle one ping: observe, upsert the rows, then emit one event per observation."""
        if ping.type != PING_EVENT_TYPE:
            raise InvalidEvent("type", f"expected '{PING_EVENT_TYPE}', found '{ping.type}'")
        observations = await self.provider.observe(self._stations, tick_time(ping))
        await self._database.call(lambda: self._store.upsert(observations), what="store weather observations")
        await self._sink.send_all(self.event(o) for o in observations)
        return {"observations": len(observations)}

    def event(self, observation: Observation) -> CloudEvent:
        """The event of one observation, keyed by station (a repeat has the same id)."""
        data = observation.event_data()
        return new_event(WEATHER_EVENT_TYPE, self._source, f"{observation.station_id}/{data['timestamp']}", data,
                         partitionkey=observation.station_id, time=data["timestamp"])

    async def close(self) -> None:
        """Close the provider, the database pool and the broker's HTTP session."""
        await self.provider.close()
        await self._store.close()
        await self._sink.close()


def tick_time(ping: CloudEvent) -> datetime:
    """The ping's `time` (else now), to the minute: a redelivered ping observes the same time."""
    text = ping.attributes.get("time")
    moment = datetime.fromisoformat(text) if text else datetime.now(UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
