"""PingSource: the data plane sends `dev.knative.sources.ping` to the sink on its schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web

from tests.integration.eventing.subscriber import Subscriber

pytestmark = pytest.mark.integration


def ping_yaml(namespace: str, delivery: str = "") -> str:
    return f"""
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: tick, namespace: {namespace}}}
spec:
  schedule: "0 0 1 1 *"
  contentType: application/json
  data: '{{"job": "test"}}'
  sink:
    ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: receiver}}
    uri: /ping
{delivery}
"""


async def test_pings_on_the_interval_override(start_plane, subscriber: Subscriber, namespace: str) -> None:
    await start_plane(ping_yaml(namespace), namespace, service_urls={"receiver": subscriber.url},
                      ping_interval_s=0.2)
    received = await subscriber.wait_for("ping", 3, timeout=10)
    events = [r.event for r in received]
    assert {e.type for e in events} == {"dev.knative.sources.ping"}
    assert {e.source for e in events} == {f"/apis/v1/namespaces/{namespace}/pingsources/tick"}
    assert len({e.id for e in events}) == len(events)
    assert all(e.datacontenttype == "application/json" and e.json() == {"job": "test"} for e in events)


async def test_a_tick_is_retried_per_the_delivery_spec(start_plane, subscriber: Subscriber, namespace: str) -> None:
    subscriber.answers["ping"] = lambda r: web.Response(status=503 if r.attempt < 3 else 200)
    delivery = "  delivery: {retry: 3, backoffPolicy: linear, backoffDelay: PT0.05S}"
    plane = await start_plane(ping_yaml(namespace, delivery), namespace, service_urls={"receiver": subscriber.url})
    (ping,) = plane.pings
    await ping.tick(datetime(2026, 1, 1, tzinfo=UTC))
    received = subscriber.at("ping")
    assert [r.attempt for r in received] == [1, 2, 3]
    assert {r.event.id for r in received} == {received[0].event.id}
    assert received[0].event.attributes["time"] == "2026-01-01T00:00:00Z"
