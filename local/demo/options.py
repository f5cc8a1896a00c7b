"""What a demo run simulates: fleet size, the simulated period and its compression into wall time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Period:
    """The simulated period: `count` intervals of `interval` from `start` (UTC)."""

    start: datetime
    interval: timedelta
    count: int

    @property
    def end(self) -> datetime:
        """The end of the last interval (excluded)."""
        return self.start + self.count * self.interval

    def moment(self, index: int) -> datetime:
        """The start of interval `index`: the timestamp of its readings."""
        return self.start + index * self.interval

    def moments(self) -> list[datetime]:
        """Every reading timestamp of the period."""
        return [self.moment(index) for index in range(self.count)]


@dataclass(frozen=True)
class DemoOptions:
    """The `smartgrid demo` flags."""

    sensors: int = 200
    meters: int = 2000
    gateways: int = 20
    hours: int = 24
    interval_minutes: int = 15
    duration_s: float = 60.0
    seed: int = 7
    keep_running: bool = False

    def check(self) -> None:
        """Raise ValueError naming the flag whose value cannot be simulated."""
        for flag, value, least in (("--sensors", self.sensors, 1), ("--meters", self.meters, 1),
                                   ("--gateways", self.gateways, 1), ("--hours", self.hours, 1),
                                   ("--interval-minutes", self.interval_minutes, 1)):
            if value < least:
                raise ValueError(f"{flag}: expected at least {least}, found {value}")
        if self.gateways > self.meters:
            raise ValueError(f"--gateways: expected at most one per meter ({self.meters}), found {self.gateways}")
        if self.hours * 60 < self.interval_minutes:
            raise ValueError(f"--interval-minutes: expected at most the period ({self.hours * 60} min), "
                             f"found {self.interval_minutes}")
        if self.duration_s < 0:
            raise ValueError(f"--duration: expected a number of seconds >= 0, found {self.duration_s:g}")

    def period(self, now: datetime) -> Period:
        """The simulated period: from midnight UTC as many whole days back as `hours` needs (yesterday for 24 h)."""
        days = math.ceil(self.hours / 24)
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        interval = timedelta(minutes=self.interval_minutes)
        return Period(today - timedelta(days=days), interval, self.hours * 60 // self.interval_minutes)
