"""Routing through real Kafka: every filter dialect, ordered vs unordered delivery."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest
from aiohttp import web

from tests.integration.eventing.conftest import (
    broker_yaml,
    event,
    post_event,
    trigger_yaml,
)
from tests.integration.eventing.subscriber import Received, Subscriber

pytestmark = pytest.mark.integration

FILTERS = {
    "legacy": "  filter: {attributes: {type: com.smartgrid.sensor.reading, feeder: ''}}",
    "exact": "  filters: [{exact: {type: com.smartgrid.meter.reading}}]",
    "prefix": "  filters: [{prefix: {type: com.smartgrid.}}]",
    "suffix": "  filters: [{suffix: {source: /gateway}}]",
    "all": "  filters: [{all: [{prefix: {type: com.smartgrid.}}, {exact: {feeder: f1}}]}]",
    "any": "  filters: [{any: [{exact: {type: com.other}}, {exact: {feeder: f2}}]}]",
    "not": "  filters: [{not: {prefix: {type: com.smartgrid.}}}]",
    "everything": "",
}

EVENTS = {
    "sensor-f1": ("com.smartgrid.sensor.reading", "/field/gateway", {"feeder": "f1"}),
    "sensor-nofeeder": ("com.smartgrid.sensor.reading", "/devices", {}),
    "meter-f2": ("com.smartgrid.meter.reading", "/meters", {"feeder": "f2"}),
    "other": ("com.other", "/elsewhere", {}),
}

EXPECTED = {
    "legacy": {"sensor-f1", "sensor-nofeeder"},
    "exact": {"meter-f2"},
    "prefix": {"sensor-f1", "sensor-nofeeder", "meter-f2"},
    "suffix": {"sensor-f1"},
    "all": {"sensor-f1"},
    "any": {"meter-f2", "other"},
    "not": {"other"},
    "everything": set(EVENTS),
}


async def test_every_filter_dialect_routes_through_kafka(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    manifests = broker_yaml(namespace) + "".join(
        trigger_yaml(namespace, name, f"{subscriber.url}/{name}", spec) for name, spec in FILTERS.items()
    )
    plane = await start_plane(manifests, namespace)
    url = f"{plane.url}/{namespace}/default"
    for event_id, (type_, source, extensions) in EVENTS.items():
        ce = event(type_, event_id, **extensions).with_attributes(source=source)
        assert await post_event(http, url, ce) == 202
    await subscriber.wait_for("everything", len(EVENTS))
    for name, expected in EXPECTED.items():
        await subscriber.wait_for(name, len(expected))
    await asyncio.sleep(0.3)  # anything extra would have arrived by now
    for name, expected in EXPECTED.items():
        assert {r.event.id for r in subscriber.at(name)} == expected, name


async def _jittery(received: Received) -> web.Response:
    await asyncio.sleep(random.uniform(0, 0.01))
    return web.Response(status=202)


async def test_ordered_delivery_keeps_per_key_order_and_unordered_runs_concurrently(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    in_flight = {"ordered": 0, "unordered": 0}
    peak = {"ordered": 0, "unordered": 0}

    def counting(path: str):
        async def answer(received: Received) -> web.Response:
            in_flight[path] += 1
            peak[path] = max(peak[path], in_flight[path])
            try:
                return await _jittery(received)
            finally:
                in_flight[path] -= 1
        return answer

    subscriber.answers["ordered"] = counting("ordered")
    subscriber.answers["unordered"] = counting("unordered")
    manifests = (
        broker_yaml(namespace)
        + trigger_yaml(namespace, "ordered", f"{subscriber.url}/ordered",
                       annotations="kafka.eventing.knative.dev/delivery.order: ordered")
        + trigger_yaml(namespace, "unordered", f"{subscriber.url}/unordered")
    )
    plane = await start_plane(manifests, namespace)
    url = f"{plane.url}/{namespace}/default"
    keys, per_key = [f"meter-{i}" for i in range(6)], 40

    async def send_in_order(key: str) -> None:
        for sequence in range(per_key):
            assert await post_event(http, url, event(id=f"{key}/{sequence}", partitionkey=key)) == 202

    await asyncio.gather(*(send_in_order(key) for key in keys))
    total = len(keys) * per_key
    await subscriber.wait_for("ordered", total, timeout=60)
    await subscriber.wait_for("unordered", total, timeout=60)
    for key in keys:
        sequences = [int(r.event.id.split("/")[1]) for r in subscriber.at("ordered") if r.event.id.startswith(key + "/")]
        assert sequences == list(range(per_key)), key
    assert peak["ordered"] <= 3  # one at a time per partition, 3 partitions
    assert peak["unordered"] > 3
