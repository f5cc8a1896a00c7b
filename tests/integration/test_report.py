"""`smartgrid report` against two real HTTP servers serving canned analytics and alert answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

import pytest
from aiohttp import web

from local import aio
from local.cli import main

START = datetime(2026, 11, 10, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)
PEAK_AT = datetime(2026, 11, 19, 18, tzinfo=UTC)
ALERTS = [
    {"alert_id": "a-2", "rule_id": "overload", "device_id": "tr-7", "feeder_id": "F-12", "severity": "critical",
     "status": "open", "raised_at": "2026-11-19T18:05:00+00:00", "message": "current at 185 % of rated"},
    {"alert_id": "a-1", "rule_id": "voltage-en50160", "device_id": "s-3", "feeder_id": "F-12",
     "severity": "warning", "status": "cleared", "raised_at": "2026-11-15T07:00:00+00:00",
     "message": "phase L2 mean 205 V"},
]


def _buckets() -> list[dict[str, object]]:
    rows, at = [], START - timedelta(days=35)
    while at < END:
        energy = 40.0 + 20.0 * (7 <= at.hour < 21) + (60.0 if at == PEAK_AT else 0.0)
        rows.append({"bucket_start": at.isoformat(), "bucket_end": (at + timedelta(hours=1)).isoformat(),
                     "energy_kwh": energy, "readings": 40})
        at += timedelta(hours=1)
    return rows


class Servers:
    """The two APIs on their own event loop in a thread; records the query of each request."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, dict[str, str]]] = []
        self.urls: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []

    async def _analytics(self, request: web.Request) -> web.Response:
        self.queries.append((request.path, dict(request.query)))
        start, end = (datetime.fromisoformat(request.query[name]) for name in ("from", "to"))
        rows = [row for row in _buckets() if start <= datetime.fromisoformat(str(row["bucket_start"])) < end]
        return web.json_response(rows)

    async def _alerts(self, request: web.Request) -> web.Response:
        self.queries.append((request.path, dict(request.query)))
        return web.json_response([alert for alert in ALERTS if alert["feeder_id"] == request.query.get("feeder")])

    async def _start(self) -> None:
        for name, path, handler in (("analytics", "/api/v1/analytics/feeders/{id}", self._analytics),
                                    ("alerts", "/api/v1/alerts", self._alerts)):
            app = web.Application()
            app.router.add_get(path, handler)
            runner, url = await aio.serve(app)
            self._runners.append(runner)
            self.urls[name] = url + "/api/v1/" + name

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def __enter__(self) -> Self:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def servers() -> Iterator[Servers]:
    """The canned analytics and alert APIs."""
    with Servers() as running:
        yield running


def test_report_writes_png_and_html_of_feeder_peak_and_alerts(servers: Servers, tmp_path: Path) -> None:
    assert _report(servers, tmp_path, START, END) == 0

    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    html = (tmp_path / "report.html").read_text()
    assert "feeder F-12" in html and "data:image/png;base64," in html
    assert "120.00 kW at 2026-11-19 18:00" in html
    assert "current at 185 % of rated" in html and "phase L2 mean 205 V" in html and "critical" in html
    assert "gradient boosting" in html
    alert_query = next(query for path, query in servers.queries if path == "/api/v1/alerts")
    assert alert_query == {"feeder": "F-12", "status": "all", "since": START.isoformat(),
                           "until": END.isoformat(), "limit": "1000"}


def _report(servers: Servers, out: Path, start: datetime, end: datetime) -> int:
    return main(["report", "--feeder", "F-12", "--from", start.isoformat(), "--to", end.isoformat(),
                 "--out", str(out), "--analytics-url", servers.urls["analytics"],
                 "--alerts-url", servers.urls["alerts"]])


def test_report_says_when_history_is_too_short_for_the_model(servers: Servers, tmp_path: Path) -> None:
    first = START - timedelta(days=35)

    assert _report(servers, tmp_path, first + timedelta(days=2), first + timedelta(days=10)) == 0

    html = (tmp_path / "report.html").read_text()
    assert "seasonal-naive (same time last week)" in html and "fewer than 28: seasonal-naive" in html


def test_report_refuses_a_period_that_ends_before_it_starts(servers: Servers, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(servers, tmp_path, END, START) == 2
    assert "expected a time before to" in capsys.readouterr().err and not (tmp_path / "report.png").exists()
