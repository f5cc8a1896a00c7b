"""The local Knative Eventing Kafka data plane: ingress, one consumer per Trigger and
KafkaSource, a schedule per PingSource, delivery with retries and dead letters, replies back
to the broker."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from confluent_kafka import Message

from local import aio
from local.eventing.delivery import Deliverer, Route
from local.eventing.ingress import Ingress
from local.eventing.kafka import (
    DEFAULT_FETCH_WAIT_MS,
    AsyncProducer,
    ConsumerLoop,
    KafkaUnavailable,
    ensure_topics,
)
from local.eventing.manifests import (
    DEFAULT_PARTITIONS,
    Broker,
    DeliverySpec,
    EventingConfig,
    KafkaSource,
    PingSource,
    Trigger,
)
from local.eventing.ping import PingLoop
from local.eventing.source import record_to_event
from local.http1 import HttpClient
from shared.auth.client import ServiceToken
from shared.cloudevents import (
    CloudEvent,
    InvalidEvent,
    from_kafka,
    to_http_binary,
    to_kafka,
)

log = logging.getLogger("smartgrid.eventing")


@dataclass(frozen=True)
class DataPlaneOptions:
    """How the data plane runs: where Kafka is, where to listen, how to resolve Service refs."""

    bootstrap: str
    host: str = "127.0.0.1"
    port: int = 0
    service_urls: Mapping[str, str] = field(default_factory=dict)
    max_event_bytes: int = 1024 * 1024
    default_timeout_s: float = 60.0
    max_in_flight: int = 256
    fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS  # how long Kafka may hold an empty fetch (latency vs broker CPU)
    sock: socket.socket | None = None  # a socket bound beforehand, to serve the ingress on
    ping_interval_s: float | None = None  # every PingSource ticks this often instead of its schedule
    # The roles of this process when the data plane runs in several (local/eventing/workers.py):
    serve_ingress: bool = True
    share: tuple[int, int] | None = (0, 1)  # dispatcher k of n consumes the partitions p % n == k; None: none
    reply_url: str | None = None  # POST replies to this ingress instead of producing them (one producer)
    # (token URL, client id, secret): deliveries carry this client's access token, as Knative's OIDC delivery does.
    credentials: tuple[str, str, str] | None = None


class DataPlane:
    """Runs the brokers, triggers and sources of an EventingConfig until stopped."""

    def __init__(self, config: EventingConfig, options: DataPlaneOptions) -> None:
        self.config = config
        self.options = options
        self._producer: AsyncProducer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client = HttpClient()
        self._consumers: list[ConsumerLoop] = []
        self.pings: list[PingLoop] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Create topics, position this process's consumers, then open the ingress if it serves
        one; return its base URL ("" without an ingress)."""
        options = self.options
        await asyncio.to_thread(ensure_topics, options.bootstrap, self._topics())
        if options.serve_ingress or options.reply_url is None:
            self._producer = AsyncProducer(options.bootstrap)
        if options.share is not None:
            await self._start_dispatch(options.share)
        if options.serve_ingress:
            assert self._producer is not None
            ingress = Ingress(self.config, self._producer, options.max_event_bytes)
            self._runner, self.url = await aio.serve(ingress.application(), options.host, options.port,
                                                     sock=options.sock)
        return self.url

    async def _start_dispatch(self, share: tuple[int, int]) -> None:
        """Position the consumers of every Trigger and KafkaSource; the first dispatcher runs the PingSources."""
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300))
        token = ServiceToken(*self.options.credentials) if self.options.credentials else None
        deliverer = Deliverer(self._client, self._session, self._publish_reply, token)
        self._consumers = [self._trigger_consumer(t, deliverer, share) for t in self.config.triggers]
        self._consumers += [self._source_consumer(s, deliverer, share) for s in self.config.sources]
        await asyncio.gather(*(consumer.start() for consumer in self._consumers))
        self.pings = [self._ping_loop(p, deliverer) for p in self.config.pings] if share[0] == 0 else []
        for ping in self.pings:
            ping.start()

    async def stop(self) -> None:
        """Close the ingress, drain and commit every consumer, flush the producer."""
        if self._runner is not None:
            await self._runner.cleanup()
            log.info("stopping: ingress closed")
        await asyncio.gather(*(ping.stop() for ping in self.pings))
        await asyncio.gather(*(consumer.stop() for consumer in self._consumers))
        log.info("stopping: consumers drained and committed")
        self._client.close()
        if self._session is not None:
            await self._session.close()
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
        log.info("stopped")

    def broker_url(self, broker: Broker) -> str:
        """The ingress URL of one broker."""
        return f"{self.url}/{broker.namespace}/{broker.name}"

    def _topics(self) -> dict[str, int]:
        topics = {broker.topic: broker.partitions for broker in self.config.brokers}
        for source in self.config.sources:
            for topic in source.topics:
                topics.setdefault(topic, DEFAULT_PARTITIONS)
        return topics

    def _route(self, name: str, destination_url: str, spec: DeliverySpec | None, reply_topic: str | None) -> Route:
        spec = spec or DeliverySpec()
        sink = spec.dead_letter_sink.resolve(self.options.service_urls) if spec.dead_letter_sink else None
        timeout = spec.timeout_s or self.options.default_timeout_s
        return Route(name, destination_url, spec, sink, reply_topic, timeout)

    def _trigger_consumer(self, trigger: Trigger, deliverer: Deliverer, share: tuple[int, int]) -> ConsumerLoop:
        broker = self.config.broker(trigger.namespace, trigger.broker)
        assert broker is not None
        route = self._route(
            f"trigger/{trigger.namespace}/{trigger.name}",
            trigger.subscriber.resolve(self.options.service_urls),
            trigger.delivery or broker.delivery,
            reply_topic=broker.topic,
        )

        async def handle(message: Message) -> None:
            event = _broker_event(message, route.name)
            if event is not None and trigger.matches(event.attributes):
                await deliverer.deliver(event, route)

        return ConsumerLoop(
            self.options.bootstrap, [broker.topic], trigger.consumer_group, handle,
            ordered=trigger.ordered, max_in_flight=self.options.max_in_flight, share=share,
            fetch_wait_ms=self.options.fetch_wait_ms,
        )

    def _source_consumer(self, source: KafkaSource, deliverer: Deliverer, share: tuple[int, int]) -> ConsumerLoop:
        route = self._route(
            f"kafkasource/{source.namespace}/{source.name}",
            source.sink.resolve(self.options.service_urls),
            source.delivery,
            reply_topic=None,
        )

        async def handle(message: Message) -> None:
            try:
                event = record_to_event(source, message)
            except InvalidEvent as error:
                log.error("dropped route=%s offset=%s/%s: record is a broken CloudEvent: %s",
                          route.name, message.partition(), message.offset(), error)
                return
            await deliverer.deliver(event, route)

        return ConsumerLoop(
            self.options.bootstrap, source.topics, source.consumer_group, handle,
            ordered=source.ordered, initial_offset=source.initial_offset,
            max_in_flight=self.options.max_in_flight, share=share, fetch_wait_ms=self.options.fetch_wait_ms,
        )

    def _ping_loop(self, source: PingSource, deliverer: Deliverer) -> PingLoop:
        route = self._route(
            f"pingsource/{source.namespace}/{source.name}",
            source.sink.resolve(self.options.service_urls),
            source.delivery,
            reply_topic=None,
        )
        return PingLoop(source, lambda event: deliverer.deliver(event, route), self.options.ping_interval_s)

    async def _publish_reply(self, topic: str, reply: CloudEvent) -> None:
        if self.options.reply_url is None:
            assert self._producer is not None
            await self._producer.send(topic, to_kafka(reply))
            return
        broker = next(b for b in self.config.brokers if b.topic == topic)
        url = f"{self.options.reply_url}/{broker.namespace}/{broker.name}"
        await post_to_ingress(self._client, url, reply, self.options.default_timeout_s)


async def post_to_ingress(client: HttpClient, url: str, event: CloudEvent, timeout_s: float) -> None:
    """Store `event` through a broker ingress; raises KafkaUnavailable unless it answers 202."""
    headers, body = to_http_binary(event)
    try:
        response = await client.post(url, headers, body, timeout_s)
    except (OSError, TimeoutError, ValueError) as error:
        raise KafkaUnavailable(f"the broker ingress {url} did not take it: {error}") from None
    if response.status != 202:
        raise KafkaUnavailable(f"the broker ingress {url} answered {response.status}: {response.body[:200]!r}")


def _broker_event(message: Message, route_name: str) -> CloudEvent | None:
    try:
        event = from_kafka(message.headers(), message.value())
    except InvalidEvent as error:
        event, reason = None, str(error)
    else:
        reason = "no ce_specversion header"
    if event is None:
        log.error("dropped route=%s offset=%s/%s: broker record is not a CloudEvent (%s)",
                  route_name, message.partition(), message.offset(), reason)
    return event

