"""KafkaSource: raw records become CloudEvents as Knative makes them; CloudEvents pass through."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer

from shared.cloudevents import to_kafka
from tests.integration.eventing.conftest import event
from tests.integration.eventing.subscriber import Subscriber

pytestmark = pytest.mark.integration


def source_yaml(namespace: str, topic: str, sink: str) -> str:
    return f"""
apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata: {{name: gateways, namespace: {namespace}}}
spec:
  bootstrapServers: [ignored-locally:9092]
  topics: [{topic}]
  sink: {{uri: "{sink}"}}
"""


def _produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(topic, **record)
    producer.flush(10)


async def test_records_are_converted_and_cloudevents_pass_through(
    start_plane, subscriber: Subscriber, namespace: str, kafka_bootstrap: str
) -> None:
    topic = f"{namespace}-meter-readings"
    await start_plane(source_yaml(namespace, topic, f"{subscriber.url}/sink"), namespace)
    passthrough = event("com.smartgrid.meter.reading", "ce-1", partitionkey="m-7")
    record = to_kafka(passthrough)
    await asyncio.to_thread(_produce, kafka_bootstrap, topic, [
        {"key": b"gw-1", "value": b'{"kwh": 1.5}', "partition": 0, "timestamp": 1_700_000_000_123,
         "headers": [("content-type", b"application/json"), ("X-Gateway-Id", b"gw-1")]},
        {"key": record.key, "value": record.value, "headers": record.headers, "partition": 1},
    ])
    received = await subscriber.wait_for("sink", 2)
    by_type = {r.event.type: r.event for r in received}
    raw = by_type["dev.knative.kafka.event"]
    assert raw.attributes["id"] == "partition:0/offset:0"
    assert raw.attributes["source"] == f"/apis/v1/namespaces/{namespace}/kafkasources/gateways#{topic}"
    assert raw.attributes["subject"] == "partition:0#0"
    assert raw.attributes["time"] == "2023-11-14T22:13:20.123000Z"
    assert raw.attributes["key"] == "gw-1"
    assert raw.attributes["kafkaheaderxgatewayid"] == "gw-1"
    assert raw.datacontenttype == "application/json"
    assert raw.json() == {"kwh": 1.5}
    assert by_type["com.smartgrid.meter.reading"].attributes == passthrough.attributes
    assert by_type["com.smartgrid.meter.reading"].data == passthrough.data
