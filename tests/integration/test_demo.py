"""`smartgrid demo`: a small simulated fleet registered with the users service and through the whole
platform with its tokens, its summary consistent; with --keep-running the platform stays up for
`smartgrid dlq` until `smartgrid down`."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from local.demo.anomalies import SILENCE, plan_anomalies
from local.demo.fleet import build_fleet
from local.servers.databases import drop

pytestmark = pytest.mark.integration

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))
SMALL = ["--sensors", "10", "--meters", "50", "--gateways", "2", "--hours", "2", "--duration", "5"]
KEEPS_RUNNING = "the platform keeps running"
FIGURE = re.compile(r"^  (\S.*?)\s{2,}([\d,]+)(?:\s{2}(.*))?$")
REASON = re.compile(r"^    (\S.*?)\s{2,}([\d,]+)$")
EXPECTED = re.compile(r"^expected ([\d,]+)")


@pytest.fixture
def demo_env(kafka_bootstrap: str, pg_admin_dsn: str, state_dir: Path) -> Iterator[dict[str, str]]:
    """The session's servers, a database prefix and a state folder of this test's own."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"demo{tag}_"
    env = {
        **os.environ,
        "SMARTGRID_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SMARTGRID_PG_DSN": pg_admin_dsn,
        "SMARTGRID_DB_PREFIX": prefix,
        "SMARTGRID_STATE_DIR": str(state_dir / f"demo-{tag}"),
    }
    try:
        yield env
    finally:
        drop(pg_admin_dsn, prefix)


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come (None at its end), read by a thread."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _summary(lines: list[str]) -> dict[str, dict[str, object]]:
    """Section -> label -> number (and its note), and each breakdown's reasons, from the summary's lines."""
    sections: dict[str, dict[str, object]] = {}
    section: dict[str, object] = {}
    last = ""
    for line in lines:
        if line and not line.startswith(" "):
            section = sections.setdefault(line.split(" (")[0].split(",")[0], {})
        elif match := FIGURE.match(line):
            last = match.group(1)
            section[last] = int(match.group(2).replace(",", ""))
            section[f"{last} note"] = match.group(3) or ""
        elif match := REASON.match(line):
            reasons = section.setdefault(f"{last} reasons", {})
            assert isinstance(reasons, dict)
            reasons[match.group(1)] = int(match.group(2).replace(",", ""))
    return sections


@pytest.mark.timeout(240)
def test_small_demo_reports_consistent_figures_and_keeps_running_until_down(demo_env: dict[str, str]) -> None:
    state = Path(demo_env["SMARTGRID_STATE_DIR"])
    process = subprocess.Popen([SMARTGRID, "demo", *SMALL, "--keep-running"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=demo_env)
    assert process.stdout is not None and process.stderr is not None
    errors = _lines(process.stderr)
    lines = _lines(process.stdout)
    printed: list[str] = []
    try:
        while (line := lines.get(timeout=200)) is not None and KEEPS_RUNNING not in line:
            printed.append(line)
        assert line is not None, (f"smartgrid demo ended early; see {state / 'logs' / 'demo.log'}; it said:\n"
                                  + "\n".join(_drained(errors)[-40:]))

        print("\n".join(printed))  # shown when an assertion fails
        summary = _summary(printed)
        devices = summary["devices registered with the users service"]
        http = summary["sent over HTTP to ingest"]
        kafka = summary["produced to Kafka topic smartgrid-meter-readings"]
        stored = summary["stored in database smartgrid by this run"]
        alerts = summary["alerts raised"]
        letters = summary["dead letters"]
        # SMALL's fleet and 8 intervals: one sensor and one meter fall silent for a while (readings not sent)
        planned = plan_anomalies(build_fleet(10, 50, 2, seed=7), 8, 15, seed=7)
        unsent = {anomaly.device_id.partition("-")[0]: anomaly.length for anomaly in planned if anomaly.kind == SILENCE}
        # a new database: every device registered by this run, each sensor one token (the run is shorter than one)
        assert devices["registered"] == 10 + 2 + 50 and "already registered" not in devices
        assert devices["sensor tokens"] == 10
        assert http["accepted"] == 80 - unsent["SEN"] and http["failed"] == 0
        assert http["events"] == http["accepted"] + http["rejected"]
        assert http["rejected"] >= 7 and sum(http["rejected reasons"].values()) == http["rejected"]
        assert {"400 unknown event type: type", "400 invalid CloudEvent: body", "400 invalid data: data.timestamp",
                "403 insufficient_scope: data.device_id"} <= set(http["rejected reasons"])
        assert kafka["batches"] == 16 and kafka["meter readings"] == 400 - unsent["MTR"]
        assert kafka["malformed records"] >= 3
        assert stored["sensor_readings rows"] == http["accepted"]
        assert stored["meter_readings rows"] == kafka["meter readings"]
        expected = {label.removesuffix(" note"): int(match.group(1).replace(",", "")) for label, note in alerts.items()
                    if label.endswith(" note") and (match := EXPECTED.match(str(note)))}
        total = expected.pop("alerts")
        assert {"voltage-en50160", "frequency", "overload", "reverse-flow"} <= set(expected), alerts
        assert all(alerts[rule] == count for rule, count in expected.items()), alerts  # as expected, no more
        assert sum(expected.values()) == total == alerts["alerts"] - alerts.get("missing-data", 0)
        assert all("; 0 open, " in str(alerts[f"{rule} note"]) for rule in expected), alerts  # anomalies ended
        assert any(line.startswith("notifications") for line in printed)
        assert letters["dead-lettered"] > 0 and letters["dead-lettered"] % kafka["malformed records"] == 0
        assert str(letters["dead-lettered note"]).startswith(f"expected {letters['dead-lettered']} ")
        assert "consistent" in next(line for line in printed if line.startswith("  result"))

        # The platform is up as `smartgrid up` would be: `smartgrid dlq` finds it through the state file.
        listing = subprocess.run([SMARTGRID, "dlq", "list"], capture_output=True, text=True, env=demo_env,
                                 timeout=60, check=False)
        assert listing.returncode == 0, listing.stderr
        rows = listing.stdout.splitlines()[1:]  # the database is this test's own: every dead letter is the demo's
        assert len(rows) == letters["dead-lettered"] and all("dev.knative.kafka.event" in row for row in rows)

        down = subprocess.run([SMARTGRID, "down"], capture_output=True, text=True, env=demo_env, timeout=60,
                              check=False)
        assert down.returncode == 0, down.stderr
        assert down.stdout.startswith(f"stopped the platform (pid {process.pid})")
        assert process.wait(30) == 0
        assert not (state / "platform.json").exists() and not (state / "up.pid").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert "simulated intervals" in "\n".join(_drained(errors))


def _drained(lines: queue.Queue[str | None]) -> list[str]:
    """The lines left in the queue, up to the stream's end."""
    drained = []
    while (line := lines.get(timeout=10)) is not None:
        drained.append(line)
    return drained
