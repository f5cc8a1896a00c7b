"""Fixtures for the data plane tests: a scripted subscriber and data planes built from YAML."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from local.eventing.dataplane import DataPlane, DataPlaneOptions
from local.eventing.manifests import load_manifests
from shared.cloudevents import CloudEvent, new_event, to_http_binary
from tests.integration.eventing.subscriber import Subscriber

StartPlane = Callable[..., Awaitable[DataPlane]]


@pytest.fixture
def namespace() -> str:
    """A namespace of this test only, so topics and consumer groups never collide."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    """A running scripted subscriber."""
    sub = Subscriber()
    await sub.start()
    yield sub
    await sub.stop()


@pytest.fixture
async def start_plane(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[StartPlane]:
    """Start data planes from YAML text; all are stopped at the end of the test."""
    planes: list[DataPlane] = []

    async def start(manifests: str, namespace: str, **options: object) -> DataPlane:
        path = tmp_path / f"manifests-{len(planes)}.yaml"
        path.write_text(manifests)
        plane = DataPlane(load_manifests(path, namespace), DataPlaneOptions(bootstrap=kafka_bootstrap, **options))
        await plane.start()
        planes.append(plane)
        return plane

    yield start
    for plane in planes:
        await plane.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def post_event(http: aiohttp.ClientSession, url: str, event: CloudEvent) -> int:
    """POST `event` in binary mode; return the status."""
    headers, body = to_http_binary(event)
    async with http.post(url, data=body, headers=headers) as response:
        return response.status


def event(type: str = "com.example.test", id: str | None = None, **extensions: str) -> CloudEvent:
    """A test event with JSON data."""
    return new_event(type, "/tests", id or uuid.uuid4().hex, {"value": 1}, **extensions)


def broker_yaml(namespace: str, name: str = "default", delivery: str = "") -> str:
    """A Kafka Broker manifest with 3 partitions (via its ConfigMap) and an optional delivery block."""
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: {namespace}}}
data: {{default.topic.partitions: "3"}}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: {name}
  namespace: {namespace}
  annotations: {{eventing.knative.dev/broker.class: Kafka}}
spec:
  config: {{apiVersion: v1, kind: ConfigMap, name: cfg}}
{delivery}
"""


def trigger_yaml(namespace: str, name: str, subscriber_uri: str, spec: str = "", annotations: str = "") -> str:
    """A Trigger manifest on broker `default`; `spec` is extra YAML indented under spec."""
    return f"""
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: {name}
  namespace: {namespace}
  annotations: {{{annotations}}}
spec:
  broker: default
  subscriber: {{uri: "{subscriber_uri}"}}
{spec}
"""
