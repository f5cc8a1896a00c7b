"""Cron schedules of PingSources: standard 5-field expressions in a time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

CRON_TZ_PREFIX = "CRON_TZ="


class ScheduleError(ValueError):
    """Raised when a schedule or time zone cannot be used; names the field."""


@dataclass(frozen=True)
class Schedule:
    """A 5-field cron expression (`*`, `*/n`, lists, ranges) evaluated in one time zone."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, schedule: str, timezone: str | None = None) -> Schedule:
        """Parse `spec.schedule` (optionally `CRON_TZ=<zone> <cron>`) and `spec.timezone`."""
        text = schedule.strip()
        if text.startswith(CRON_TZ_PREFIX):
            zone_name, _, text = text.removeprefix(CRON_TZ_PREFIX).partition(" ")
            timezone = timezone or zone_name
        fields = text.split()
        if len(fields) != 5 or not croniter.is_valid(text):
            raise ScheduleError(f"spec.schedule: expected a 5-field cron expression, found {schedule!r}")
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"spec.timezone: expected an IANA time zone, found {timezone!r}") from None
        return cls(" ".join(fields), zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment` (an aware datetime), in the schedule's zone."""
        try:
            return croniter(self.expression, moment.astimezone(self.zone)).get_next(datetime)
        except CroniterError as error:
            raise ScheduleError(f"spec.schedule: {error}") from None
