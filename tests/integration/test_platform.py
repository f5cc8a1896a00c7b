"""`smartgrid up` / `down`: functions behind activators, cold starts, scale to zero, replies, clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from local.activator import Activator
from local.functions import Function
from local.servers.process import port_open

pytestmark = pytest.mark.integration

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))
NAMESPACE = "grid"

ECHO = '''
import json, os
import functions_framework.aio

@functions_framework.aio.http
async def handler(request):
    headers = {k: v for k, v in request.headers.items() if k.startswith("ce-")}
    record = {
        "pid": os.getpid(),
        "k_service": os.environ["K_SERVICE"],
        "k_sink": os.environ["K_SINK"],
        "dsn_variables": sorted(k for k in os.environ if k.startswith("SMARTGRID_DSN_")),
        "headers": headers,
    }
    with open(os.environ["ECHO_RECORD"], "a") as out:
        out.write(json.dumps(record) + "\\n")
    return headers
'''

REPLIER = '''
import uuid
import functions_framework.aio
from starlette.responses import Response

@functions_framework.aio.http
async def handler(request):
    asked = request.headers["ce-id"]
    return Response(
        b'{"answer": 42}',
        headers={
            "ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": "/replier",
            "ce-type": "test.echo.reply", "ce-subject": asked, "content-type": "application/json",
        },
    )
'''

EVENTING = f'''
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: default, namespace: {NAMESPACE}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: to-echo, namespace: {NAMESPACE}}}
spec:
  broker: default
  filters: [{{prefix: {{type: test.echo}}}}]
  subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: to-replier, namespace: {NAMESPACE}}}
spec:
  broker: default
  filter: {{attributes: {{type: test.ask}}}}
  subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: replier}}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: to-ghost, namespace: {NAMESPACE}}}
spec:
  broker: default
  filter: {{attributes: {{type: test.ghost}}}}
  subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: ghost}}}}
  delivery:
    deadLetterSink: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}}}
'''


def _post_event(broker: str, event_type: str) -> str:
    """POST a binary-mode CloudEvent to the broker; return its id."""
    event_id = str(uuid.uuid4())
    request = urllib.request.Request(broker, data=b'{"kw": 1.5}', method="POST", headers={
        "ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/test", "ce-type": event_type,
        "content-type": "application/json",
    })
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    return event_id


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {what} within {timeout:.0f} s, found it did not happen")
        time.sleep(0.05)
    return result


def _lines(stream: IO[bytes]) -> queue.Queue[str]:
    """The stream's lines, read by a thread as they come."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.decode().rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children first found by their parent pid in /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture
def platform_dirs(tmp_path: Path) -> Path:
    """Functions `echo` and `replier`; a Broker with a Trigger to each, and one to a missing `ghost`."""
    for name, source in (("echo", ECHO), ("replier", REPLIER)):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "main.py").write_text(source)
    (tmp_path / "eventing").mkdir()
    (tmp_path / "eventing" / "eventing.yaml").write_text(EVENTING)
    return tmp_path


@pytest.fixture
def platform_env(platform_dirs: Path, kafka_bootstrap: str, pg_admin_dsn: str) -> dict[str, str]:
    """The environment of `smartgrid up` and `down`: the test's folders and the session's servers."""
    return {
        **os.environ,
        "SMARTGRID_FUNCTIONS_DIR": str(platform_dirs / "functions"),
        "SMARTGRID_EVENTING_DIR": str(platform_dirs / "eventing"),
        "SMARTGRID_STATE_DIR": str(platform_dirs / "state"),
        "SMARTGRID_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SMARTGRID_PG_DSN": pg_admin_dsn,
        "ECHO_RECORD": str(platform_dirs / "echo.jsonl"),
    }


@pytest.fixture
def platform(platform_env: dict[str, str], platform_dirs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A running `smartgrid up --idle-seconds 2`, stopped by SIGTERM if the test did not stop it."""
    with open(platform_dirs / "up.log", "ab") as log:
        process = subprocess.Popen(
            [SMARTGRID, "up", "--idle-seconds", "2"], stdout=subprocess.PIPE, stderr=log, env=platform_env,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


@pytest.mark.timeout(90)
def test_up_scales_functions_to_zero_and_down_stops_everything(
    platform: subprocess.Popen[bytes], platform_env: dict[str, str], platform_dirs: Path
) -> None:
    log = platform_dirs / "up.log"
    record = platform_dirs / "echo.jsonl"
    assert platform.stdout is not None
    lines = _lines(platform.stdout)
    endpoints = [lines.get(timeout=45)]
    while not endpoints[-1].startswith("replier "):
        endpoints.append(lines.get(timeout=45))
    urls = {line.split()[0]: line.split()[1] for line in endpoints}
    assert endpoints[0].startswith("broker http://127.0.0.1:") and endpoints[0].endswith(f"/{NAMESPACE}/default")
    assert urls["registry"].startswith("http://127.0.0.1:") and urls["redis"].startswith("redis://127.0.0.1:")
    assert urls["echo"].startswith("http://127.0.0.1:") and urls["replier"].startswith("http://127.0.0.1:")
    broker = urls["broker"]

    def received() -> list[dict[str, Any]]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

    def log_count(text: str) -> int:
        return log.read_text().count(text)

    # Cold start on the first event, with Knative's environment.
    ping = _post_event(broker, "test.echo.ping")
    first = _wait_for("the ping at echo", lambda: next((r for r in received() if r["headers"]["ce-id"] == ping), None))
    assert log_count("cold start echo") == 1
    assert first["k_service"] == "echo" and first["k_sink"] == broker
    assert first["dsn_variables"] == ["SMARTGRID_DSN_ANALYTICS", "SMARTGRID_DSN_SMARTGRID", "SMARTGRID_DSN_USERS"]

    # A function's CloudEvent reply goes back to the broker and on to echo.
    ask = _post_event(broker, "test.ask")
    reply = _wait_for("the reply of replier at echo",
                      lambda: next((r for r in received() if r["headers"].get("ce-subject") == ask), None))
    assert reply["headers"]["ce-type"] == "test.echo.reply" and reply["pid"] == first["pid"]
    assert log_count("cold start replier") == 1

    # A ref to a Service without a function folder answers 503: the event is dead-lettered, not lost.
    assert "Knative Service 'ghost' (subscriber of Trigger grid/to-ghost) has no function folder" in log.read_text()
    ghost = _post_event(broker, "test.ghost")
    letter = _wait_for("the event for ghost at its dead-letter sink echo",
                       lambda: next((r for r in received() if r["headers"]["ce-id"] == ghost), None))
    assert letter["headers"]["ce-knativeerrorcode"] == "503"
    descendants = _descendants(platform.pid)
    assert first["pid"] in descendants

    # Idle for 2 s: scaled to zero, and the next event starts it again.
    _wait_for("echo to scale to zero", lambda: log_count("scaled to zero echo") == 1, timeout=10)
    _wait_for("echo's process to be gone", lambda: not _alive(first["pid"]), timeout=5)
    again = _post_event(broker, "test.echo.ping")
    later = _wait_for("the second ping at echo",
                      lambda: next((r for r in received() if r["headers"]["ce-id"] == again), None))
    assert later["pid"] != first["pid"]
    assert log_count("cold start echo") == 2
    descendants |= _descendants(platform.pid)

    # `down` stops everything `up` started.
    down = subprocess.run([SMARTGRID, "down"], env=platform_env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith(f"stopped the platform (pid {platform.pid})")
    assert platform.wait(5) == 0
    assert [pid for pid in descendants if _alive(pid)] == []
    assert not any(port_open("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])) for url in urls.values())
    assert not (platform_dirs / "state" / "up.pid").exists()


async def test_concurrent_first_requests_start_the_function_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "main.py").write_text(ECHO)
    env = {"ECHO_RECORD": str(tmp_path / "echo.jsonl")}
    activator = Activator(Function("echo", tmp_path / "echo" / "main.py"), "http://sink", env, tmp_path / "logs", 60)
    url = await activator.start()
    caplog.set_level(logging.INFO, "smartgrid.serving")
    try:
        async with aiohttp.ClientSession() as http:

            async def get(i: int) -> tuple[int, Any]:
                async with http.post(f"{url}/path?i={i}", headers={"ce-id": str(i)}, data=b"x") as response:
                    return response.status, await response.json()

            answers = await asyncio.gather(*(get(i) for i in range(20)))
    finally:
        await activator.stop()
    assert answers == [(200, {"ce-id": str(i)}) for i in range(20)]
    serving = [r for r in caplog.records if r.name == "smartgrid.serving"]
    assert [r.getMessage().split()[:3] for r in serving] == [["cold", "start", "echo"]]
    assert len({json.loads(line)["pid"] for line in (tmp_path / "echo.jsonl").read_text().splitlines()}) == 1


async def test_a_function_that_does_not_start_answers_503_naming_its_log(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "main.py").write_text("def handler(:\n")
    activator = Activator(Function("broken", tmp_path / "broken" / "main.py"), "http://sink", {}, tmp_path / "logs", 60)
    url = await activator.start()
    try:
        async with aiohttp.ClientSession() as http, http.post(url, data=b"{}") as response:
            status, body = response.status, await response.json()
    finally:
        await activator.stop()
    assert status == 503
    assert body["function"] == "broken" and body["log"] == str(tmp_path / "logs" / "broken.log")
    assert "SyntaxError" in Path(body["log"]).read_text()
