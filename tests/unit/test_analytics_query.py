"""The analytics API's query parameters: defaults, and errors naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.analytics.api import query
from shared.analytics.points import distinct_points
from shared.params import BadParameter

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_defaults_are_hourly_buckets_of_the_last_day() -> None:
    assert query({}, NOW) == ("hour", NOW - timedelta(days=1), NOW)


def test_times_with_offsets_are_taken() -> None:
    params = {"bucket": "15min", "from": "2026-11-22T08:00:00+01:00", "to": "2026-11-22T10:00:00Z"}
    assert query(params, NOW) == ("15min", datetime(2026, 11, 22, 7, tzinfo=UTC), NOW)


@pytest.mark.parametrize(("params", "field"), [
    ({"bucket": "minute"}, "bucket"),
    ({"from": "2026-11-22T08:00:00"}, "from"),
    ({"to": "noon"}, "to"),
    ({"from": "2026-11-22T10:00:00Z"}, "from"),
    ({"bucket": "15min", "from": "2020-01-01T00:00:00Z"}, "from"),
])
def test_bad_parameters_are_named(params: dict[str, str], field: str) -> None:
    with pytest.raises(BadParameter) as raised:
        query(params, NOW)
    assert raised.value.field == field and "expected" in str(raised.value)


def test_points_keep_the_first_reading_of_a_meter_and_time_and_average_the_phases() -> None:
    first = {"meter_id": "m", "timestamp": NOW, "registers": {"1.8.0": 5.0, "32.7.0": 229.0, "72.7.0": 231.0}}
    again = {**first, "registers": {"1.8.0": 6.0}}
    [point] = distinct_points([first, again])
    assert (point.import_kwh, point.voltage_v, point.power_kw, point.feeder_id) == (5.0, 230.0, None, None)
