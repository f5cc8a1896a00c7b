"""PingSource: cron schedules, manifest parsing and the ping event."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.eventing.manifests import (
    Destination,
    EventingConfig,
    ManifestError,
    load_manifests,
)
from local.eventing.ping import ping_event
from local.eventing.schedule import Schedule, ScheduleError
from shared.cloudevents import PING_EVENT_TYPE

REPO_ROOT = Path(__file__).resolve().parents[2]
SINK = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "weather"}}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * *", utc(2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 1)),
        ("*/15 * * * *", utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30)),
        ("0,30 6-8 * * *", utc(2026, 1, 1, 8, 31), utc(2026, 1, 2, 6, 0)),
        ("0 12 * * 1-5", utc(2026, 1, 2, 13, 0), utc(2026, 1, 5, 12, 0)),  # Friday -> Monday
        ("0 0 1 */3 *", utc(2026, 1, 15), utc(2026, 4, 1)),
    ],
)
def test_next_tick(expression: str, after: datetime, expected: datetime) -> None:
    assert Schedule.parse(expression).next_after(after) == expected


def test_time_zone_shifts_the_ticks() -> None:
    tick = Schedule.parse("0 9 * * *", "Europe/Berlin").next_after(utc(2026, 7, 1))
    assert tick.astimezone(UTC) == utc(2026, 7, 1, 7)  # 09:00 CEST
    assert Schedule.parse("CRON_TZ=Europe/Berlin 0 9 * * *").zone.key == "Europe/Berlin"


@pytest.mark.parametrize(
    ("expression", "timezone", "field"),
    [
        ("* * * *", None, "spec.schedule"),
        ("0 0 * * * *", None, "spec.schedule"),
        ("61 * * * *", None, "spec.schedule"),
        ("every minute", None, "spec.schedule"),
        ("* * * * *", "Mars/Olympus", "spec.timezone"),
    ],
)
def test_bad_schedule_names_the_field(expression: str, timezone: str | None, field: str) -> None:
    with pytest.raises(ScheduleError, match=f"^{field}: expected"):
        Schedule.parse(expression, timezone)


def ping_source(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": {"name": "tick", "namespace": "grid"},
        "spec": {"schedule": "*/5 * * * *", "sink": SINK, **spec},
    }


def load(tmp_path: Path, document: dict[str, Any]) -> EventingConfig:
    (tmp_path / "ping.yaml").write_text(yaml.safe_dump(document))
    return load_manifests(tmp_path)


def test_ping_source_is_parsed(tmp_path: Path) -> None:
    (source,) = load(tmp_path, ping_source(contentType="application/json", data='{"a": 1}',
                                           delivery={"retry": 2})).pings
    assert (source.namespace, source.name) == ("grid", "tick")
    assert source.schedule == Schedule.parse("*/5 * * * *")
    assert source.sink == Destination(service="weather", namespace="grid")
    assert (source.content_type, source.data) == ("application/json", b'{"a": 1}')
    assert source.delivery is not None and source.delivery.retry == 2


def test_ping_source_base64_data(tmp_path: Path) -> None:
    (source,) = load(tmp_path, ping_source(dataBase64=base64.b64encode(b"\x00\x01").decode())).pings
    assert source.data == b"\x00\x01" and source.content_type is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": None}, "spec.schedule: expected a cron expression"),
        ({"schedule": "* *"}, "spec.schedule: expected a 5-field cron expression"),
        ({"timezone": "Nowhere/City"}, "spec.timezone: expected an IANA time zone"),
        ({"data": "x", "dataBase64": "eA=="}, "spec.data: expected either"),
        ({"dataBase64": "not base64!"}, "spec.dataBase64: expected base64 text"),
        ({"sink": None}, "spec.sink: expected a `uri` or a `ref`"),
    ],
)
def test_ping_source_errors_name_the_field(tmp_path: Path, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(f"PingSource 'tick': {message}")):
        load(tmp_path, ping_source(**spec))


def test_ping_event() -> None:
    config = load_manifests(REPO_ROOT / "eventing")
    (source,) = [p for p in config.pings if p.name == "weather-ping"]
    event = ping_event(source, utc(2026, 11, 22, 10, 0))
    assert event.type == PING_EVENT_TYPE
    assert event.source == "/apis/v1/namespaces/smartgrid/pingsources/weather-ping"
    assert event.attributes["time"] == "2026-11-22T10:00:00Z"
    assert event.datacontenttype == "application/json" and event.json() == {"job": "weather-observations"}
    assert source.sink == Destination(service="weather", namespace="smartgrid")
