"""The readings API through the readings function's real HTTP interface, over readings stored by the store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from shared.readings.decoding import METER_READING, SENSOR_READING
from shared.readings.rows import meter_row, sensor_row
from shared.readings.store import (
    METER_READINGS,
    SENSOR_READINGS,
    ReadingStore,
    prepare_connection,
)
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from tests.identity import Identity
from tests.integration.readings_api.service import readings_service

pytestmark = pytest.mark.integration
T0 = datetime(2021, 3, 31, 23, 0, tzinfo=UTC)  # the range spans two monthly partitions
STEPS = 12  # readings every 10 minutes, the same times for every device
CATALOGUE = Catalogue.load(max_future_seconds=300)


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def stored(domain_dsns: dict[str, str], prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The meter and sensor readings stored for this module, as the catalogue's datums."""
    meters = [CATALOGUE.validate(METER_READING, meter(prefix, index, step)) for index in range(5)
              for step in range(STEPS)]
    sensors = [CATALOGUE.validate(SENSOR_READING, sensor(prefix, index, step)) for index in range(4)
               for step in range(STEPS)]
    database = Database(domain_dsns["smartgrid"], configure=prepare_connection)
    store = ReadingStore(database)
    await store.write(METER_READINGS, [meter_row(datum, f"e-{i}") for i, datum in enumerate(meters)])
    await store.write(SENSOR_READINGS, [sensor_row(datum, f"e-{i}") for i, datum in enumerate(sensors)])
    await database.close()
    return {"meters": meters, "sensors": sensors}


@pytest.fixture(scope="module")
async def api(domain_dsns: dict[str, str], identity: Identity,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with readings_service(domain_dsns["smartgrid"], identity, tmp_path_factory.mktemp("readings") / "log") as url:
        yield url


@pytest.fixture
async def http(identity: Identity) -> AsyncIterator[aiohttp.ClientSession]:
    """A client with an analyst's token."""
    async with aiohttp.ClientSession(headers=identity.headers("analyst")) as session:
        yield session


def meter(prefix: str, index: int, step: int) -> dict[str, Any]:
    registers = {"1.8.0": 100.0 * index + step, "1.7.0": 1.5, "32.7.0": 230.0 + step}
    if index == 0:
        registers.update({"1.8.1": 7.0 + step, "2.8.0": 0.5})  # a register of other_registers, and export
    return {"meter_id": f"{prefix}m{index:02d}", "site_id": f"s{index}",
            "feeder_id": None if index == 1 else "F1", "region": None if index == 1 else "north",
            "timestamp": _at(step), "registers": registers}


def sensor(prefix: str, index: int, step: int) -> dict[str, Any]:
    three_phase = index % 2 == 0
    return {"device_id": f"{prefix}s{index:02d}", "feeder_id": "F1",
            "location": {"lat": 52.5, "lon": 13.4} if index != 3 else None, "timestamp": _at(step),
            "voltage_v": {"l1": 230.0, "l2": 231.0 if three_phase else None, "l3": 229.0 if three_phase else None},
            "current_a": {"l1": 10.0 + step, "l2": None, "l3": None} if index != 1 else None,
            "rated_current_a": 400.0, "frequency_hz": 50.01, "active_power_kw": 2.0 * step,
            "reactive_power_kvar": None, "power_factor": 0.95, "temperature_c": 40.0 if index == 0 else None}


def _at(step: int) -> str:
    return (T0 + timedelta(minutes=10 * step)).isoformat().replace("+00:00", "Z")


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


async def all_pages(http: aiohttp.ClientSession, url: str, limit: int, **params: str) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        status, body = await get(http, url, limit=str(limit), **params, **({"after": after} if after else {}))
        assert status == 200, body
        pages.append(body["readings"])
        after = body["next"]
        if after is None:
            return pages


@pytest.mark.parametrize("kind, type_, limit", [("meters", METER_READING, 7), ("sensors", SENSOR_READING, 5)])
async def test_pages_cover_every_reading_of_the_range_once_in_time_and_id_order(
    api: str, http: aiohttp.ClientSession, stored: dict[str, list[dict[str, Any]]], prefix: str,
    kind: str, type_: str, limit: int,
) -> None:
    pages = await all_pages(http, f"{api}/{kind}", limit, **{"from": _at(0), "to": _at(STEPS)})
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    received = [reading for page in pages for reading in page]
    id_field = "meter_id" if kind == "meters" else "device_id"
    keys = [(reading[id_field], reading["timestamp"]) for reading in received]
    assert len(set(keys)) == len(keys), "no reading twice"
    ours = [CATALOGUE.validate(type_, reading) for reading in received if reading[id_field].startswith(prefix)]
    assert ours == sorted(stored[kind], key=lambda datum: (datum["timestamp"], datum[id_field])), \
        "each stored reading once, in the catalogue's shape, ordered by time then id"
    assert len(pages) > STEPS * 4 // limit, "pages cut between readings of the same time"


async def test_one_device_in_a_range_with_to_excluded(
    api: str, http: aiohttp.ClientSession, stored: dict[str, list[dict[str, Any]]], prefix: str
) -> None:
    status, body = await get(http, f"{api}/meters/{prefix}m00", **{"from": _at(2), "to": _at(6)})
    assert status == 200 and body["next"] is None
    assert [CATALOGUE.validate(METER_READING, reading) for reading in body["readings"]] == \
        [datum for datum in stored["meters"] if datum["meter_id"] == f"{prefix}m00"][2:6]
    assert body["readings"][0]["registers"] == {"1.8.0": 2.0, "1.7.0": 1.5, "32.7.0": 232.0, "1.8.1": 9.0,
                                                "2.8.0": 0.5}
    assert body["readings"][0]["timestamp"] == "2021-03-31T23:20:00Z"
    pages = await all_pages(http, f"{api}/sensors/{prefix}s03", 5, **{"from": _at(0), "to": _at(STEPS)})
    assert [len(page) for page in pages] == [5, 5, 2]
    assert pages[0][0]["location"] is None and pages[0][0]["voltage_v"] == {"l1": 230.0, "l2": None, "l3": None}
    status, body = await get(http, f"{api}/meters/{prefix}unknown", **{"from": _at(0), "to": _at(STEPS)})
    assert (status, body) == (200, {"readings": [], "next": None})


@pytest.mark.parametrize("params, field", [
    ({"from": "yesterday"}, "from"),
    ({"to": "2021-03-31T23:00:00"}, "to"),
    ({"from": "2021-04-01T00:00:00Z", "to": "2021-04-01T00:00:00Z"}, "from"),
    ({"limit": "0"}, "limit"),
    ({"limit": "10001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": "not-a-cursor"}, "after"),
    ({"after": "WyJ4IiwgMV0"}, "after"),  # ["x", 1]
])
async def test_bad_parameters_answer_400_naming_the_parameter(
    api: str, http: aiohttp.ClientSession, params: dict[str, str], field: str
) -> None:
    status, body = await get(http, f"{api}/meters", **params)
    assert status == 400 and body["field"] == field, body


async def test_unknown_paths_answer_404_other_methods_403_and_other_roles_403(
    api: str, http: aiohttp.ClientSession, identity: Identity
) -> None:
    for path in ("", "/", "/feeders", "/meters/m1/history"):
        status, body = await get(http, f"{api}{path}")
        assert (status, body["field"]) == (404, "path"), path
    async with http.post(f"{api}/meters", data=b"{}") as response:
        assert response.status == 403 and (await response.json())["field"] == "authorization", "no rule: denied"
    for token in (identity.headers("viewer"), identity.headers("operator"), identity.device("s-1", "sensor")):
        async with http.get(f"{api}/meters", headers=token) as response:
            assert response.status == 403 and (await response.json())["error"] == "insufficient_scope"
    async with http.get(f"{api}/meters", headers={"Authorization": "Bearer not-a-jwt"}) as response:
        assert response.status == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    status, body = await get(http, api.replace("/api/v1/readings", "/healthz"))
    assert (status, body) == (200, {"status": "ok"})
