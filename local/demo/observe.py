"""What the platform made of a run: rows stored, dead letters, and alerts on the broker topic.

Only this run's share is counted: readings of the fleet in the simulated period stored since the
run began (`received_at`), dead letters received since then, and alert events on the broker topic
written since then (Kafka record time) about the fleet's devices, each alert id once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from local.demo.options import Period
from shared.cloudevents import from_kafka
ALERT_RAISED = "com.smartgrid.alert.raised"  # (until the demo counts alerts in the database)

METADATA_TIMEOUT_S = 10.0
POLL_BATCH = 1000


@dataclass(frozen=True)
class Observed:
    """This run's rows, dead letters (by reason) and distinct alerts (by rule)."""

    sensor_rows: int = 0
    meter_rows: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Expected:
    """What this run should leave behind once processing settled."""

    sensor_rows: int
    meter_rows: int
    dead_letters: int
    alerts: Counter[str]

    def met_by(self, observed: Observed) -> bool:
        """True when the observation is exactly what was expected."""
        return (observed.sensor_rows, observed.meter_rows, observed.dead_letters.total(), observed.alerts) == (
            self.sensor_rows, self.meter_rows, self.dead_letters, self.alerts
        )


class Observer:
    """Counts this run's share of the `smartgrid` database and of the broker topic's alerts."""

    def __init__(self, dsn: str, bootstrap: str, broker_topic: str, period: Period,
                 sensors: Sequence[str], meters: Sequence[str]) -> None:
        self._dsn = dsn
        self._period = period
        self._sensors = list(sensors)
        self._meters = list(meters)
        self._devices = frozenset(self._sensors) | frozenset(self._meters)
        self._alerts = AlertCounter(bootstrap, broker_topic, self._devices)
        self._conn: psycopg.AsyncConnection | None = None
        self.since: datetime | None = None

    async def start(self) -> None:
        """Connect, and mark now as the start of the run (database clock and Kafka record time)."""
        self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        row = await (await self._conn.execute("SELECT now()")).fetchone()
        assert row is not None
        self.since = row[0]
        await asyncio.to_thread(self._alerts.start)

    async def stored_before(self) -> tuple[int, int]:
        """Sensor and meter rows of the fleet already stored at the run's timestamps (an earlier run's)."""
        moments = self._period.moments()
        return (
            await self._count("SELECT count(*) FROM sensor_readings WHERE device_id = ANY(%s) AND ts = ANY(%s)",
                              self._sensors, moments),
            await self._count("SELECT count(*) FROM meter_readings WHERE meter_id = ANY(%s) AND ts = ANY(%s)",
                              self._meters, moments),
        )

    async def observe(self) -> Observed:
        """The current counts."""
        period, since = self._period, self.since
        sensor_rows = await self._count(
            "SELECT count(*) FROM sensor_readings WHERE device_id = ANY(%s) AND ts >= %s AND ts < %s "
            "AND received_at >= %s", self._sensors, period.start, period.end, since)
        meter_rows = await self._count(
            "SELECT count(*) FROM meter_readings WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s "
            "AND received_at >= %s", self._meters, period.start, period.end, since)
        assert self._conn is not None
        letters = await (await self._conn.execute(
            "SELECT error_code, error_text FROM dead_letters WHERE received_at >= %s", (since,))).fetchall()
        alerts = await asyncio.to_thread(self._alerts.poll)
        return Observed(sensor_rows, meter_rows, Counter(dead_letter_reason(code, text) for code, text in letters),
                        alerts)

    async def close(self) -> None:
        """Disconnect from the database and Kafka."""
        if self._conn is not None:
            await self._conn.close()
        await asyncio.to_thread(self._alerts.close)

    async def _count(self, query: str, *params: object) -> int:
        assert self._conn is not None, "call start() first"
        row = await (await self._conn.execute(query, params)).fetchone()
        return int(row[0]) if row else 0


class AlertCounter:
    """Reads the broker topic from the beginning and keeps the distinct alert ids about given devices."""

    def __init__(self, bootstrap: str, topic: str, devices: frozenset[str]) -> None:
        self._topic = topic
        self._devices = devices
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"smartgrid-demo-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        })
        self._since_ms = 0
        self._seen: dict[str, str] = {}

    def start(self) -> None:
        """Note the start time and read every partition from its first record."""
        self._since_ms = int(time.time() * 1000)
        partitions = self._consumer.list_topics(self._topic, timeout=METADATA_TIMEOUT_S).topics[self._topic].partitions
        self._consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])

    def poll(self) -> Counter[str]:
        """Read what arrived since the last poll; return the distinct alerts so far, by rule."""
        while batch := self._consumer.consume(POLL_BATCH, timeout=0.2):
            for message in batch:
                if message.error() is None:
                    self._note(message)
        return Counter(self._seen.values())

    def close(self) -> None:
        """Leave Kafka."""
        self._consumer.close()

    def _note(self, message: Message) -> None:
        headers = dict(message.headers() or [])
        if headers.get("ce_type") != ALERT_RAISED.encode() or message.timestamp()[1] < self._since_ms:
            return
        event = from_kafka(message.headers(), message.value())
        if event is None:
            return
        data = orjson.loads(event.data or b"{}")
        if data.get("device_id") in self._devices:
            self._seen[event.id] = data.get("rule_id", "?")


def dead_letter_reason(code: int | None, text: str | None) -> str:
    """`<code> <error>: <field>` from a dead letter's answer, when it is the JSON of a rejection."""
    try:
        answer = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        return f"{code} {answer['error']}: {answer.get('field', '?')}"
    return f"{code} {(text or '').strip()[:60]}"


async def settle(observe: Callable[[], Awaitable[Observed]], expected: Expected, *,
                 quiet_s: float, timeout_s: float, on_change: Callable[[Observed], None]) -> tuple[Observed, bool]:
    """Poll until the observation meets `expected` (True), or stops changing for `quiet_s`, or `timeout_s`."""
    began = last_change = time.monotonic()
    last: Observed | None = None
    while True:
        observed = await observe()
        if expected.met_by(observed):
            on_change(observed)
            return observed, True
        now = time.monotonic()
        if observed != last:
            last, last_change = observed, now
            on_change(observed)
        elif now - last_change >= quiet_s or now - began >= timeout_s:
            return observed, False
        await asyncio.sleep(1.0)
