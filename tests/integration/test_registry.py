"""The local Schema Registry over HTTP: the Confluent API's shapes, the client, and a decode end to end."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from local.registry import registry_app
from shared.validation.catalogue import Catalogue, InvalidData, UnknownSchemaId
from shared.validation.registry import CONTENT_TYPE, RegistryClient, RegistryError
from shared.validation.wire import decode, encode

pytestmark = pytest.mark.integration

EVENTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
METER = "com.smartgrid.meter.reading"
BATCH = "com.smartgrid.meter.readings.batch"
SENSOR = "com.smartgrid.sensor.reading"
READING = {"meter_id": "MTR-1", "site_id": "SITE-1", "timestamp": 1714564800000, "registers": {"1.8.0": 7.5}}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(EVENTS_DIR, max_future_seconds=300)


@pytest.fixture(scope="module")
def registry_url(catalogue: Catalogue) -> Iterator[str]:
    """The registry app on a free port, served from a thread with its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="registry", daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(registry_app(catalogue))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def client(registry_url: str) -> RegistryClient:
    return RegistryClient(registry_url, max_future_seconds=300)


def get(url: str) -> tuple[int, str, Any]:
    """Status, media type and JSON body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), orjson.loads(error.read())


def test_subjects(registry_url: str, catalogue: Catalogue) -> None:
    status, content_type, body = get(f"{registry_url}/subjects")
    assert (status, content_type) == (200, CONTENT_TYPE)
    assert sorted(body) == sorted([*catalogue.types, "smartgrid-meter-readings-value", "smartgrid-sensor-data-value"])


@pytest.mark.parametrize(
    ("subject", "type"),
    [
        (METER, METER),
        (BATCH, BATCH),
        ("smartgrid-meter-readings-value", BATCH),
        ("smartgrid-sensor-data-value", SENSOR),
    ],
)
def test_subject_versions(registry_url: str, catalogue: Catalogue, subject: str, type: str) -> None:
    assert get(f"{registry_url}/subjects/{subject}/versions") == (200, CONTENT_TYPE, [1])
    latest = catalogue.latest(type)
    for version in ("latest", "1", "-1"):
        status, _, body = get(f"{registry_url}/subjects/{subject}/versions/{version}")
        assert status == 200
        assert set(body) == {"subject", "version", "id", "schema"}
        assert (body["subject"], body["version"], body["id"]) == (subject, 1, latest.schema_id)
        assert isinstance(body["schema"], str) and orjson.loads(body["schema"]) == latest.schema


def test_schema_by_id(registry_url: str, catalogue: Catalogue) -> None:
    batch = catalogue.latest(BATCH)
    status, _, body = get(f"{registry_url}/schemas/ids/{batch.schema_id}")
    assert (status, body) == (200, {"schema": batch.text})
    status, _, body = get(f"{registry_url}/schemas/ids/{batch.schema_id}/versions")
    assert status == 200
    assert sorted(body, key=lambda entry: entry["subject"]) == [
        {"subject": BATCH, "version": 1},
        {"subject": "smartgrid-meter-readings-value", "version": 1},
    ]


@pytest.mark.parametrize(
    ("path", "status", "error_code"),
    [
        ("/subjects/com.smartgrid.nothing/versions", 404, 40401),
        ("/subjects/com.smartgrid.nothing/versions/latest", 404, 40401),
        ("/subjects/smartgrid-unknown-topic-value/versions", 404, 40401),
        (f"/subjects/{METER}/versions/2", 404, 40402),
        (f"/subjects/{METER}/versions/0", 422, 42202),
        (f"/subjects/{METER}/versions/first", 422, 42202),
        ("/schemas/ids/7", 404, 40403),
        ("/schemas/ids/seven", 404, 40403),
        ("/schemas/ids/7/versions", 404, 40403),
    ],
)
def test_errors(registry_url: str, path: str, status: int, error_code: int) -> None:
    answered, content_type, body = get(registry_url + path)
    assert (answered, content_type) == (status, CONTENT_TYPE)
    assert set(body) == {"error_code", "message"} and body["error_code"] == error_code
    assert body["message"]


def test_client_schema_by_id_is_cached(client: RegistryClient, catalogue: Catalogue) -> None:
    meter = catalogue.latest(METER)
    first = client.schema_by_id(meter.schema_id)
    assert first == meter.schema
    assert client.schema_by_id(meter.schema_id) is first
    with pytest.raises(UnknownSchemaId):
        client.schema_by_id(7)


def test_client_latest(client: RegistryClient, catalogue: Catalogue) -> None:
    latest = client.latest("smartgrid-sensor-data-value")
    sensor = catalogue.latest(SENSOR)
    assert (latest.subject, latest.version, latest.schema_id) == ("smartgrid-sensor-data-value", 1, sensor.schema_id)
    assert latest.schema == sensor.schema
    with pytest.raises(RegistryError) as caught:
        client.latest("com.smartgrid.nothing")
    assert (caught.value.status, caught.value.error_code) == (404, 40401)


def test_client_without_a_registry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RegistryError, match="expected a Schema Registry"):
        RegistryClient(f"http://127.0.0.1:{port}", timeout=2, max_future_seconds=300).latest(METER)


def test_a_gateway_record_decodes_end_to_end(client: RegistryClient, catalogue: Catalogue) -> None:
    subject = client.latest("smartgrid-meter-readings-value")
    producer_schema = catalogue.by_id(subject.schema_id)
    datum = producer_schema.validate({"gateway_id": "GW-1", "readings": [READING] * 50})
    payload = encode(producer_schema, datum)

    schema, decoded = decode(payload, client.event_schema)
    assert (schema.type, schema.version, schema.schema_id) == (BATCH, 1, subject.schema_id)
    assert decoded == datum
    assert client.event_schema(subject.schema_id) is schema

    with pytest.raises(InvalidData) as caught:
        decode(b"\x00\x00\x00\x00\x07" + payload[5:], client.event_schema)
    assert (caught.value.path, caught.value.message) == ("payload", "expected a known schema id, found 7")
