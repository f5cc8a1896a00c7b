"""What the platform made of a run: rows stored, dead letters, alerts and notifications.

Only this run's share is counted: readings of the fleet in the simulated period stored since the
run began (`received_at`), dead letters received since then, alerts of the fleet's devices whose
raise was recorded since then (`alert_history.recorded_at`: their `raised_at` is the simulated
reading time) and notification attempts made since then (when `notification_attempts` exists).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import psycopg

from local.demo.options import Period

_ALERTS = """
SELECT a.rule_id, a.status, a.device_id FROM alerts a
JOIN alert_history h ON h.alert_id = a.alert_id AND h.change = 'raised'
WHERE a.device_id = ANY(%s) AND h.recorded_at >= %s
"""
_NOTIFICATIONS = """
SELECT channel, status, count(*) FROM notification_attempts WHERE attempted_at >= %s GROUP BY channel, status
"""


@dataclass(frozen=True)
class Observed:
    """This run's rows, dead letters (by reason), distinct alerts (by rule and status, and the devices of
    the timed rules' alerts) and notification attempts (by channel and status; None without the table)."""

    sensor_rows: int = 0
    meter_rows: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    alert_statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    timed_devices: frozenset[str] = frozenset()
    notifications: Counter[tuple[str, str]] | None = None

    @property
    def alerts(self) -> Counter[str]:
        """Distinct alerts raised by this run, by rule."""
        counts: Counter[str] = Counter()
        for (rule, _), count in self.alert_statuses.items():
            counts[rule] += count
        return counts


@dataclass(frozen=True)
class Expected:
    """What this run should leave behind once processing settled; alerts of the timed rules are not expected."""

    sensor_rows: int
    meter_rows: int
    dead_letters: int
    alerts: Counter[str]
    timed_rules: frozenset[str]

    def met_by(self, observed: Observed) -> bool:
        """True when the observation is exactly what was expected (the timed rules' alerts aside)."""
        return not self.differences(observed)

    def differences(self, observed: Observed) -> list[str]:
        """The figures of the observation that are not as expected (the timed rules' alerts aside)."""
        alerts = Counter({rule: count for rule, count in observed.alerts.items() if rule not in self.timed_rules})
        figures = (("sensor_readings rows", observed.sensor_rows, self.sensor_rows),
                   ("meter_readings rows", observed.meter_rows, self.meter_rows),
                   ("alerts", alerts, self.alerts),
                   ("dead letters", observed.dead_letters.total(), self.dead_letters))
        return [name for name, found, wanted in figures if found != wanted]


class Observer:
    """Counts this run's share of the `smartgrid` database."""

    def __init__(self, dsn: str, period: Period, sensors: Sequence[str], meters: Sequence[str],
                 timed_rules: frozenset[str]) -> None:
        self._dsn = dsn
        self._period = period
        self._sensors = list(sensors)
        self._meters = list(meters)
        self._devices = self._sensors + self._meters
        self._timed_rules = timed_rules
        self._conn: psycopg.AsyncConnection | None = None
        self._notifications = False
        self.since: datetime | None = None

    async def start(self) -> None:
        """Connect, and mark now (the database clock) as the start of the run."""
        self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        row = await (await self._conn.execute(
            "SELECT now(), to_regclass('notification_attempts') IS NOT NULL")).fetchone()
        assert row is not None
        self.since, self._notifications = row

    async def stored_before(self) -> frozenset[tuple[str, datetime]]:
        """(device, time) of the fleet's readings already stored at the run's timestamps (an earlier run's)."""
        moments = self._period.moments()
        sensors = await self._rows("SELECT device_id, ts FROM sensor_readings WHERE device_id = ANY(%s) "
                                   "AND ts = ANY(%s)", self._sensors, moments)
        meters = await self._rows("SELECT meter_id, ts FROM meter_readings WHERE meter_id = ANY(%s) AND ts = ANY(%s)",
                                  self._meters, moments)
        return frozenset((device, moment) for device, moment in sensors + meters)

    async def alerts_before(self) -> frozenset[str]:
        """Ids of the fleet's alerts raised in the period by an earlier run (this run cannot raise them again)."""
        rows = await self._rows("SELECT alert_id FROM alerts WHERE device_id = ANY(%s) AND raised_at >= %s "
                                "AND raised_at < %s", self._devices, self._period.start, self._period.end)
        return frozenset(alert_id for alert_id, in rows)

    async def observe(self) -> Observed:
        """The current counts."""
        period, since = self._period, self.since
        sensor_rows = await self._count(
            "SELECT count(*) FROM sensor_readings WHERE device_id = ANY(%s) AND ts >= %s AND ts < %s "
            "AND received_at >= %s", self._sensors, period.start, period.end, since)
        meter_rows = await self._count(
            "SELECT count(*) FROM meter_readings WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s "
            "AND received_at >= %s", self._meters, period.start, period.end, since)
        letters = await self._rows("SELECT error_code, error_text FROM dead_letters WHERE received_at >= %s", since)
        alerts = await self._rows(_ALERTS, self._devices, since)
        notifications = None
        if self._notifications:
            rows = await self._rows(_NOTIFICATIONS, since)
            notifications = Counter({(channel, status): count for channel, status, count in rows})
        return Observed(
            sensor_rows, meter_rows, Counter(dead_letter_reason(code, text) for code, text in letters),
            Counter((rule, status) for rule, status, _ in alerts),
            frozenset(device for rule, _, device in alerts if rule in self._timed_rules),
            notifications,
        )

    async def close(self) -> None:
        """Disconnect from the database."""
        if self._conn is not None:
            await self._conn.close()

    async def _count(self, query: str, *params: object) -> int:
        rows = await self._rows(query, *params)
        return int(rows[0][0]) if rows else 0

    async def _rows(self, query: str, *params: object) -> list[tuple]:
        assert self._conn is not None, "call start() first"
        return await (await self._conn.execute(query, params)).fetchall()


def dead_letter_reason(code: int | None, text: str | None) -> str:
    """`<code> <error>: <field>` from a dead letter's answer, when it is the JSON of a rejection."""
    try:
        answer = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        return f"{code} {answer['error']}: {answer.get('field', '?')}"
    return f"{code} {(text or '').strip()[:60]}"


async def settle(observe: Callable[[], Awaitable[Observed]], expected: Expected, *, quiet_s: float,
                 met_quiet_s: float, timeout_s: float, on_change: Callable[[Observed], None]) -> tuple[Observed, bool]:
    """Poll until the observation meets `expected` and has not changed for `met_quiet_s` (True: the
    alerts of timed rules and the notifications come later), or has not changed for `quiet_s`, or `timeout_s`."""
    began = last_change = time.monotonic()
    last: Observed | None = None
    while True:
        observed = await observe()
        now = time.monotonic()
        if observed != last:
            last, last_change = observed, now
            on_change(observed)
        met = expected.met_by(observed)
        if now - last_change >= (met_quiet_s if met else quiet_s) or now - began >= timeout_s:
            return observed, met
        await asyncio.sleep(1.0)
