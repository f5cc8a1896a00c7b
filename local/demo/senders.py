"""Senders: sensor CloudEvents over HTTP to `ingest` with the sensor's token, gateway batches to Kafka,
answers counted in a Tally."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from local.demo.malformed import REFUSAL_STATUS
from local.demo.messages import AvroEncoder, GatewayRecord, HttpRequest
from local.demo.tally import Tally
from local.demo.tokens import SensorTokens
from local.eventing.kafka import AsyncProducer, KafkaUnavailable
from shared.auth.client import TokenRefused, TokenUnavailable
from shared.readings.decoding import METER_BATCH
from shared.validation.registry import GATEWAY_TOPICS, RegistryClient
from shared.validation.wire import encode

METER_TOPIC = next(topic for topic, type_ in GATEWAY_TOPICS.items() if type_ == METER_BATCH)
METER_SUBJECT = f"{METER_TOPIC}-value"
HTTP_CONCURRENCY = 96
HTTP_ATTEMPTS = 4
HTTP_TIMEOUT_S = 30.0
RETRY_DELAY_S = 0.5


def registry_avro_encoder(registry_url: str) -> AvroEncoder:
    """Encode a batch in the Confluent wire format with the schema the registry holds for the meter topic."""
    client = RegistryClient(registry_url)
    schema = client.event_schema(client.latest(METER_SUBJECT).schema_id)
    return lambda batch: encode(schema, schema.validate(batch))


class HttpSender:
    """Posts requests to `ingest` with their sensor's token, at most HTTP_CONCURRENCY at a time, retrying
    5xx, lost connections and a refused token (taking another)."""

    def __init__(self, url: str, tally: Tally, tokens: SensorTokens, concurrency: int = HTTP_CONCURRENCY) -> None:
        self.url = url
        self._tally = tally
        self._tokens = tokens
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._concurrency = concurrency

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._concurrency),
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
        )
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def send_all(self, requests: Iterable[HttpRequest]) -> None:
        """Send every request; the outcomes go to the tally."""
        await asyncio.gather(*(self.send(request) for request in requests))

    async def send(self, request: HttpRequest) -> None:
        """Send one request (retried on 5xx or a lost connection) and count its outcome."""
        tally = self._tally
        tally.http_requests += 1
        tally.http_events += request.events
        if request.malformed:
            tally.malformed_sent[request.malformed] += 1
        async with self._slots:
            began = time.monotonic()
            status, answer = await self._post(request)
            tally.http_latency_s.append(time.monotonic() - began)
        if status is None or status >= 500:
            tally.http_failed[answer.get("error", f"HTTP {status}")] += request.events
            return
        refused = _refused(status, answer, request.events)
        for reason in refused.values():
            tally.http_rejected[reason] += 1
        tally.http_accepted += request.events - len(refused)
        if request.malformed and len(refused) < request.events:
            tally.malformed_accepted += 1
        elif request.malformed and status != REFUSAL_STATUS[request.malformed]:
            tally.refused_otherwise[f"{request.malformed} answered {status}, expected "
                                    f"{REFUSAL_STATUS[request.malformed]}"] += 1
        tally.sensor_accepted(reading for index, reading in enumerate(request.readings) if index not in refused)

    async def _post(self, request: HttpRequest) -> tuple[int | None, dict[str, Any]]:
        assert self._session is not None, "use HttpSender in `async with`"
        status: int | None = None
        answer: dict[str, Any] = {}
        for attempt in range(HTTP_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_DELAY_S * 2 ** (attempt - 1))
            try:
                token = await self._tokens.get(request.sender)
            except (TokenRefused, TokenUnavailable) as error:
                status, answer = None, {"error": f"no token ({type(error).__name__})"}
                continue
            headers = {**request.headers, "Authorization": f"Bearer {token}"}
            try:
                async with self._session.post(self.url, data=request.body, headers=headers) as response:
                    status, raw = response.status, await response.read()
            except (TimeoutError, aiohttp.ClientError) as error:
                status, answer = None, {"error": f"no answer ({type(error).__name__})"}
                continue
            answer = _json(raw)
            if status == 401:  # expired or otherwise refused token: take another
                self._tokens.forget(request.sender)
            elif status < 500:
                break
        return status, answer


class KafkaSender:
    """Produces gateway records to the meter topic and counts what Kafka acknowledged."""

    def __init__(self, bootstrap: str, tally: Tally, topic: str = METER_TOPIC) -> None:
        self.topic = topic
        self._tally = tally
        self._producer = AsyncProducer(bootstrap)

    async def send_all(self, records: Iterable[GatewayRecord]) -> None:
        """Produce every record; the outcomes go to the tally."""
        await asyncio.gather(*(self.send(record) for record in records))

    async def send(self, record: GatewayRecord) -> None:
        """Produce one record and count it once Kafka acknowledged it."""
        began = time.monotonic()
        try:
            await self._producer.send(self.topic, record.record)
            self._tally.kafka_latency_s.append(time.monotonic() - began)
        except KafkaUnavailable:
            self._tally.kafka_failed += 1
            return
        if record.malformed:
            self._tally.malformed_records[record.malformed] += 1
        else:
            self._tally.kafka_batches[record.encoding] += 1
            self._tally.meters_produced(record.readings)

    async def close(self) -> None:
        """Flush and close the producer."""
        await asyncio.to_thread(self._producer.close)


def _refused(status: int, answer: dict[str, Any], events: int) -> dict[int, str]:
    """Index of each event the answer refused -> why (`<status> <error>: <field>`); a request refused whole
    refuses all."""
    if 200 <= status < 300:
        return {}
    rejected = answer.get("rejected")
    if isinstance(rejected, list) and rejected:
        return {item.get("index", 0): _reason(item, status) for item in rejected if isinstance(item, dict)}
    return dict.fromkeys(range(events), _reason(answer, status))


def _reason(item: dict[str, Any], status: int) -> str:
    return f"{status} {item.get('error', 'error')}: {item.get('field', '?')}"


def _json(raw: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}
