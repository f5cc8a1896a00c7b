"""At-least-once: a data plane killed with SIGKILL mid-stream and restarted loses no event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from local.servers.process import free_port
from tests.integration.eventing.conftest import (
    broker_yaml,
    event,
    post_event,
    trigger_yaml,
)
from tests.integration.eventing.subscriber import Received, Subscriber

pytestmark = pytest.mark.integration

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))


async def _serve(manifests: Path, port: int, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `smartgrid eventing serve` and wait for its `ready` line."""
    env = {**os.environ, "SMARTGRID_KAFKA_BOOTSTRAP": bootstrap}
    process = subprocess.Popen(
        [SMARTGRID, "eventing", "serve", "-f", str(manifests), "--ingress-port", str(port)],
        stdout=subprocess.PIPE, stderr=open(log, "ab"), env=env,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
    assert line.decode().startswith("ready http://127.0.0.1:"), line
    return process


async def _send_until_accepted(http: aiohttp.ClientSession, url: str, event_id: str) -> None:
    while True:
        try:
            if await post_event(http, url, event(id=event_id, partitionkey=event_id[-2:])) == 202:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)


async def test_sigkill_mid_stream_loses_nothing(
    subscriber: Subscriber, namespace: str, kafka_bootstrap: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async def slowish(_received: Received) -> web.Response:
        await asyncio.sleep(0.002)
        return web.Response(status=202)

    subscriber.answers["sink"] = slowish
    manifests = tmp_path / "eventing.yaml"
    spec = "  delivery: {retry: 5, backoffDelay: PT0.05S}"
    manifests.write_text(broker_yaml(namespace) + trigger_yaml(namespace, "sink", f"{subscriber.url}/sink", spec))
    port = free_port()
    url = f"http://127.0.0.1:{port}/{namespace}/default"
    log = tmp_path / "dataplane.log"
    plane = await _serve(manifests, port, kafka_bootstrap, log)
    total, kill_at = 1500, 500
    ids = [f"e-{n:05d}" for n in range(total)]
    try:
        for start in range(0, total, 50):
            await asyncio.gather(*(_send_until_accepted(http, url, i) for i in ids[start:start + 50]))
            if start + 50 == kill_at:
                os.kill(plane.pid, signal.SIGKILL)
                await asyncio.to_thread(plane.wait)
                restart = asyncio.create_task(_serve(manifests, port, kafka_bootstrap, log))
            if start + 50 == kill_at + 200:
                plane = await restart
        deadline = asyncio.get_running_loop().time() + 60
        while {r.event.id for r in subscriber.at("sink")} != set(ids):
            assert asyncio.get_running_loop().time() < deadline, "events lost after SIGKILL"
            await asyncio.sleep(0.1)
    finally:
        plane.send_signal(signal.SIGTERM)
        # Waited for in a thread: the subscriber runs on this loop and must keep answering.
        await asyncio.to_thread(plane.wait, 20)
    delivered = [r.event.id for r in subscriber.at("sink")]
    duplicates = len(delivered) - len(set(delivered))
    print(f"\n{total} accepted, {len(set(delivered))} delivered, {duplicates} duplicates after SIGKILL")
    assert set(delivered) == set(ids)
