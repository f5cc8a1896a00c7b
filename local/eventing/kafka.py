"""Kafka for the data plane: an awaitable producer, topic creation, and a consumer loop
that commits an offset only after its record was handled (at-least-once)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from local.eventing.offsets import OffsetTracker
from shared.cloudevents import KafkaRecord

log = logging.getLogger("smartgrid.eventing.kafka")

PRODUCE_TIMEOUT_MS = 5000
# A few ms of linger batch the writes of concurrent ingress requests (less broker CPU per event).
PRODUCER_SETTINGS = {"linger.ms": 5, "acks": "all", "message.timeout.ms": PRODUCE_TIMEOUT_MS}
CONSUMER_SETTINGS = {"enable.auto.commit": False, "enable.auto.offset.store": False}
# How long Tansu holds an empty fetch. It does not answer a waiting fetch when data arrives, so this is
# a hop's added latency at worst; each consumer asks again as soon as a fetch returns, so the shorter,
# the more CPU Tansu spends on empty fetches (measured here with 7 idle consumers of 10 partitions:
# 47 % of a core at 10 ms, 28 % at 25 ms, 18 % at 50 ms). SMARTGRID_KAFKA_FETCH_WAIT_MS.
DEFAULT_FETCH_WAIT_MS = 10
POLL_BATCH = 500
# Tansu does not wake a waiting fetch when data arrives: a short poll keeps latency low.
POLL_TIMEOUT_S = 0.005
COMMIT_INTERVAL_S = 0.1
DISPATCH_SLICE = 32
METADATA_TIMEOUT_S = 10.0

Handler = Callable[[Message], Awaitable[None]]


class KafkaUnavailable(RuntimeError):
    """Raised when Kafka did not acknowledge a write."""


class AsyncProducer:
    """A confluent-kafka producer whose `send` resolves once Kafka acknowledged the record.

    A thread polls the producer; the acknowledgements of one poll reach the event loop in
    one hand-over, not one wake-up per record.
    """

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settled: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    async def send(self, topic: str, record: KafkaRecord) -> None:
        """Write `record` to `topic`; raises KafkaUnavailable when Kafka does not take it."""
        self._loop = self._loop or asyncio.get_running_loop()
        acknowledged = self._loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            self._settled.append((acknowledged, error))

        try:
            self._producer.produce(
                topic, value=record.value, key=record.key, headers=record.headers, on_delivery=on_delivery
            )
        except (BufferError, KafkaException) as error:
            raise KafkaUnavailable(f"Kafka did not accept the write to {topic}: {error}") from None
        await acknowledged

    def close(self, timeout: float = 10.0) -> None:
        """Stop the poll thread, flush pending writes, and disconnect."""
        self._stopping.set()
        self._poller.join()
        self._producer.flush(timeout)
        self._hand_over()
        self._producer.close()

    def _poll_forever(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        """Settle, on the event loop, the futures whose acknowledgements arrived."""
        if self._settled and self._loop is not None:
            settled, self._settled = self._settled, []
            self._loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, error in settled:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(KafkaUnavailable(f"Kafka did not acknowledge the write: {error.str()}"))


def ensure_topics(bootstrap: str, partitions_by_topic: Mapping[str, int]) -> None:
    """Create the topics that do not exist yet (Tansu keeps none across a restart)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=METADATA_TIMEOUT_S).topics
    wanted = [
        NewTopic(topic, num_partitions=count, replication_factor=1)
        for topic, count in partitions_by_topic.items()
        if topic not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic %s", topic)


class ConsumerLoop:
    """Consumes topics for one consumer group and hands each record to `handle`.

    Unordered: up to `max_in_flight` records are handled concurrently. Ordered: per
    partition, a record is handled only after the previous one finished. An offset is
    committed only once its record and every earlier one of its partition were handled.
    Partitions are assigned explicitly (no group membership), so a restarted data plane
    resumes at once from the committed offsets; with `share=(k, n)` this loop takes only the
    partitions p with p % n == k (one of n dispatcher processes).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group: str,
        handle: Handler,
        *,
        ordered: bool,
        initial_offset: str = "latest",
        max_in_flight: int = 256,
        share: tuple[int, int] = (0, 1),
        fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS,
    ) -> None:
        self.group = group
        self._share = share
        self._topics = list(topics)
        self._handle = handle
        self._ordered = ordered
        self._initial_offset = initial_offset
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER_SETTINGS,
                                   "fetch.wait.max.ms": fetch_wait_ms})
        self._tracker = OffsetTracker()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_in_flight = max_in_flight
        self._handlers: set[asyncio.Task[None]] = set()
        self._partition_queues: dict[tuple[str, int], asyncio.Queue[Message]] = {}
        self._drainers: list[asyncio.Task[None]] = []
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Assign every partition at its committed offset (or the initial offset), then poll."""
        await asyncio.to_thread(self._assign_all)
        self._poller = asyncio.create_task(self._poll_forever(), name=f"consume {self.group}")

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop polling, let in-flight records finish, commit, and close the consumer."""
        self._stopping = True
        if self._poller is not None:
            await self._poller
        in_flight = [*self._handlers, *(asyncio.ensure_future(q.join()) for q in self._partition_queues.values())]
        if in_flight:
            _, unfinished = await asyncio.wait(in_flight, timeout=drain_timeout)
            for waiter in unfinished:
                waiter.cancel()
            if unfinished:
                log.warning("consumer %s: deliveries unfinished %.0f s after stop; left uncommitted, so they are "
                            "delivered again after a restart", self.group, drain_timeout)
        abandoned = [*self._handlers, *self._drainers]
        for task in abandoned:
            task.cancel()
        await asyncio.gather(*abandoned, return_exceptions=True)
        await asyncio.to_thread(self._commit_and_close)

    async def _poll_forever(self) -> None:
        last_commit = time.monotonic()
        while not self._stopping:
            due: dict[tuple[str, int], int] = {}
            if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                due, last_commit = self._tracker.commits_due(), time.monotonic()
            messages = await asyncio.to_thread(self._commit_and_poll, due)
            for index, message in enumerate(messages, 1):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer %s: %s", self.group, error.str())
                    continue
                await self._dispatch(message)
                if index % DISPATCH_SLICE == 0:
                    await asyncio.sleep(0)  # let the ingress and the deliveries run

    async def _dispatch(self, message: Message) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        self._tracker.dispatched(topic, partition, offset)
        if self._ordered:
            key = (topic, partition)
            queue = self._partition_queues.get(key)
            if queue is None:
                queue = self._partition_queues[key] = asyncio.Queue(self._max_in_flight)
                self._drainers.append(asyncio.create_task(self._drain_partition(queue)))
            await queue.put(message)
        else:
            await self._slots.acquire()
            handler = asyncio.create_task(self._handle_one(message, release=True))
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)

    async def _drain_partition(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            await self._handle_one(message, release=False)
            queue.task_done()

    async def _handle_one(self, message: Message, release: bool) -> None:
        """Handle one record, then count it done (committable); one cancelled at stop stays uncommitted."""
        try:
            await self._handle(message)
        except Exception:
            log.exception("consumer %s: handling offset %s failed unexpectedly", self.group, message.offset())
        finally:
            if release:
                self._slots.release()
        self._tracker.completed(message.topic(), message.partition(), message.offset())

    def _assign_all(self) -> None:
        metadata = self._consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        worker, workers = self._share
        wanted = [
            TopicPartition(topic, partition)
            for topic in self._topics
            for partition in sorted(metadata.topics[topic].partitions)
            if partition % workers == worker
        ]
        if not wanted:
            return
        positions = self._consumer.committed(wanted, timeout=METADATA_TIMEOUT_S)
        for position in positions:
            if position.offset < 0:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(position.topic, position.partition), timeout=METADATA_TIMEOUT_S
                )
                position.offset = high if self._initial_offset == "latest" else low
        self._consumer.assign(positions)
        self._consumer.commit(offsets=positions, asynchronous=False)

    def _commit_and_poll(self, due: dict[tuple[str, int], int]) -> list[Message]:
        self._commit(due)
        return self._consumer.consume(POLL_BATCH, POLL_TIMEOUT_S)

    def _commit_and_close(self) -> None:
        self._commit(self._tracker.commits_due())
        self._consumer.close()

    def _commit(self, due: dict[tuple[str, int], int]) -> None:
        if not due:
            return
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in due.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            log.warning("consumer %s: commit failed, will be retried: %s", self.group, error)
            return
        self._tracker.committed(due)
