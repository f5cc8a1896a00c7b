"""Field gateways producing to Kafka: Avro (Confluent wire format) and JSON records of registered gateways
reach `process` through the KafkaSource; undecodable records, and records of an unregistered gateway or
of a meter not registered behind the batch's gateway, are dead-lettered with the reason."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from confluent_kafka import Producer

from shared.validation import wire
from shared.validation.registry import RegistryClient
from tests.integration.platform import Devices, wait_until

pytestmark = pytest.mark.integration

TOPIC = "smartgrid-meter-readings"


def batch(gateway: str, meters: list[str]) -> dict:
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {"gateway_id": gateway, "readings": [
        {"meter_id": m, "site_id": f"site-{gateway}", "timestamp": ts.isoformat(),
         "registers": {"1.8.0": 1234.5, "2.8.0": 1.0, "32.7.0": 230.5}} for m in meters]}


def produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(TOPIC, key=key, value=value)
    producer.flush(10)


def stored(dsn: str, site: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM meter_readings WHERE site_id = %s", (site,)).fetchone()[0]


async def register(devices: Devices, gateway: str, meters: list[str]) -> None:
    await devices.register({"device_id": gateway, "kind": "gateway"},
                           *({"device_id": meter, "kind": "meter", "gateway_id": gateway} for meter in meters))


def dead_letter_of(dsn: str, data: bytes) -> tuple | None:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT event_type, error_code, error_text FROM dead_letters WHERE data = %s",
                            (data,)).fetchone()


async def test_avro_and_json_batches_are_stored_and_bad_records_dead_lettered(
    platform, domain_dsns, kafka_bootstrap, devices
) -> None:
    avro_gw, json_gw = f"gw-a-{uuid.uuid4().hex[:6]}", f"gw-j-{uuid.uuid4().hex[:6]}"
    await register(devices, avro_gw, [f"{avro_gw}-{i}" for i in range(100)])
    await register(devices, json_gw, [f"{json_gw}-{i}" for i in range(30)])
    registry = RegistryClient(platform["registry"])
    schema = await asyncio.to_thread(registry.event_schema, registry.latest(f"{TOPIC}-value").schema_id)
    avro = wire.encode(schema, schema.validate(batch(avro_gw, [f"{avro_gw}-{i}" for i in range(100)])))
    plain = orjson.dumps(batch(json_gw, [f"{json_gw}-{i}" for i in range(30)]))
    broken = f"not avro nor json {uuid.uuid4().hex}".encode()
    await asyncio.to_thread(produce, kafka_bootstrap, [(avro_gw.encode(), avro), (json_gw.encode(), plain),
                                                        (b"gw-broken", broken)])
    await wait_until(lambda: stored(domain_dsns["smartgrid"], f"site-{avro_gw}") == 100, timeout=30)
    await wait_until(lambda: stored(domain_dsns["smartgrid"], f"site-{json_gw}") == 30, timeout=30)

    event_type, code, text = await wait_until(lambda: dead_letter_of(domain_dsns["smartgrid"], broken), timeout=30)
    assert (event_type, code) == ("dev.knative.kafka.event", 400)
    assert "data" in text


async def test_records_of_unregistered_gateways_and_strange_meters_are_dead_lettered(
    platform, domain_dsns, kafka_bootstrap, devices
) -> None:
    known, stranger = f"gw-k-{uuid.uuid4().hex[:6]}", f"gw-u-{uuid.uuid4().hex[:6]}"
    await register(devices, known, [f"{known}-0"])
    unknown_gateway = orjson.dumps(batch(stranger, [f"{stranger}-0"]))
    foreign_meter = orjson.dumps(batch(known, [f"{known}-0", f"{stranger}-0"]))
    await asyncio.to_thread(produce, kafka_bootstrap, [(stranger.encode(), unknown_gateway),
                                                        (known.encode(), foreign_meter)])
    for data, field in ((unknown_gateway, "gateway_id"), (foreign_meter, "readings[1].meter_id")):
        event_type, code, text = await wait_until(lambda data=data: dead_letter_of(domain_dsns["smartgrid"], data),
                                                  timeout=30)
        assert (event_type, code) == ("dev.knative.kafka.event", 400) and field in text, text
    assert stored(domain_dsns["smartgrid"], f"site-{stranger}") == 0
    assert stored(domain_dsns["smartgrid"], f"site-{known}") == 0, "nothing of a refused batch is stored"


async def test_functions_answer_probes(platform, http) -> None:
    for name in ("ingest", "process", "deadletter"):
        async with http.get(f"{platform[name]}/healthz") as response:
            assert response.status == 200 and (await response.json()) == {"status": "ok"}
