"""Broker ingress over HTTP: good events stored, bad ones answered 4xx and never written."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.integration.eventing.conftest import (
    broker_yaml,
    event,
    post_event,
    trigger_yaml,
)
from tests.integration.eventing.subscriber import Subscriber

pytestmark = pytest.mark.integration

BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", "content-type": "application/json"}
STRUCTURED = "application/cloudevents+json"


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in BINARY.items() if k != f"ce-{name}"}


BAD_REQUESTS = [
    pytest.param({"content-type": STRUCTURED}, b"{not json", "body", id="invalid-json"),
    pytest.param({"content-type": STRUCTURED}, b"[1, 2]", "body", id="json-not-object"),
    pytest.param(_without("id"), b"{}", "id", id="missing-id"),
    pytest.param(_without("source"), b"{}", "source", id="missing-source"),
    pytest.param(_without("type"), b"{}", "type", id="missing-type"),
    pytest.param(_without("specversion"), b"{}", "specversion", id="missing-specversion"),
    pytest.param({**BINARY, "ce-specversion": "0.3"}, b"{}", "specversion", id="wrong-specversion"),
    pytest.param({"content-type": "application/json"}, b"{}", "specversion", id="no-cloudevent-at-all"),
    pytest.param(
        {"content-type": STRUCTURED}, json.dumps({"specversion": "1.0", "id": "1", "source": "/s"}).encode(),
        "type", id="structured-missing-type",
    ),
    pytest.param({**BINARY, "ce-time": "yesterday"}, b"{}", "time", id="bad-time"),
]


async def test_binary_and_structured_events_are_accepted_and_delivered(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    plane = await start_plane(broker_yaml(namespace) + trigger_yaml(namespace, "all", f"{subscriber.url}/all"), namespace)
    url = f"{plane.url}/{namespace}/default"
    assert await post_event(http, url, event(id="binary-1")) == 202
    document = {"specversion": "1.0", "id": "structured-1", "source": "/s", "type": "t", "data": {"v": 2}}
    async with http.post(url, data=json.dumps(document), headers={"content-type": STRUCTURED}) as response:
        assert response.status == 202
    received = await subscriber.wait_for("all", 2)
    by_id = {r.event.id: r.event for r in received}
    assert by_id["structured-1"].json() == {"v": 2}
    assert by_id["structured-1"].datacontenttype == "application/json"
    assert by_id["binary-1"].json() == {"value": 1}


@pytest.mark.parametrize(("headers", "body", "field"), BAD_REQUESTS)
async def test_invalid_events_get_400_naming_the_field_and_are_not_stored(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession,
    headers: dict[str, str], body: bytes, field: str,
) -> None:
    plane = await start_plane(broker_yaml(namespace) + trigger_yaml(namespace, "all", f"{subscriber.url}/all"), namespace)
    url = f"{plane.url}/{namespace}/default"
    async with http.post(url, data=body, headers=headers) as response:
        assert response.status == 400
        error = await response.json()
    assert error["field"] == field
    assert error["message"]
    # A valid event sent afterwards is the only one that arrives: nothing of the bad one was written.
    assert await post_event(http, url, event(id="sentinel")) == 202
    await subscriber.wait_for("all", 1)
    assert [r.event.id for r in subscriber.at("all")] == ["sentinel"]


async def test_oversized_body_gets_413_and_is_not_stored(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    plane = await start_plane(
        broker_yaml(namespace) + trigger_yaml(namespace, "all", f"{subscriber.url}/all"), namespace, max_event_bytes=1000
    )
    url = f"{plane.url}/{namespace}/default"
    async with http.post(url, data=b"x" * 1001, headers=BINARY) as response:
        assert response.status == 413
        error = await response.json()
    assert error["field"] == "body" and "1000" in error["message"]
    assert await post_event(http, url, event(id="sentinel")) == 202
    await subscriber.wait_for("all", 1)
    assert [r.event.id for r in subscriber.at("all")] == ["sentinel"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/{ns}/default", 405), ("PUT", "/{ns}/default", 405), ("POST", "/{ns}/nope", 404),
     ("POST", "/other/default", 404), ("POST", "/a/b/c", 404)],
)
async def test_wrong_method_or_unknown_broker(
    start_plane, namespace: str, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    plane = await start_plane(broker_yaml(namespace), namespace)
    async with http.request(method, plane.url + path.format(ns=namespace), data=b"{}", headers=BINARY) as response:
        assert response.status == status
        assert (await response.json())["message"]


async def test_503_when_kafka_cannot_take_the_event(tmp_path, namespace: str, http: aiohttp.ClientSession) -> None:
    from local.eventing.dataplane import DataPlane, DataPlaneOptions
    from local.eventing.manifests import load_manifests
    from local.servers.kafka import kafka_server

    (tmp_path / "b.yaml").write_text(broker_yaml(namespace))
    with kafka_server(None, tmp_path) as private_bootstrap:
        plane = DataPlane(load_manifests(tmp_path / "b.yaml", namespace), DataPlaneOptions(private_bootstrap))
        await plane.start()
    # The private broker is stopped now.
    try:
        async with http.post(f"{plane.url}/{namespace}/default", data=b"{}", headers=BINARY) as response:
            assert response.status == 503
            assert "Kafka" in (await response.json())["message"]
    finally:
        await plane.stop()
