"""The data plane in several processes: one ingress, dispatchers splitting the partitions and
POSTing replies to the ingress; `smartgrid eventing serve --workers` and its supervisor."""

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

from shared.cloudevents import new_event, to_http_binary
from tests.integration.eventing.conftest import (
    broker_yaml,
    event,
    post_event,
    trigger_yaml,
)
from tests.integration.eventing.subscriber import Received, Subscriber

pytestmark = pytest.mark.integration

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))


def stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, ...; [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            text = stream.read()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and (fields := stat(int(entry))) and int(fields[1]) == pid and fields[0] != "Z"]


async def test_dispatchers_split_the_partitions_and_reply_through_the_ingress(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    def answer_with_reply(received: Received) -> web.Response:
        headers, body = to_http_binary(new_event("com.example.reply", "/sub", f"re-{received.event.id}"))
        return web.Response(status=200, body=body, headers=headers)

    subscriber.answers["first"] = answer_with_reply
    manifests = (
        broker_yaml(namespace)
        + trigger_yaml(namespace, "first", f"{subscriber.url}/first", "  filter: {attributes: {type: com.example.test}}")
        + trigger_yaml(namespace, "replies", f"{subscriber.url}/replies", "  filter: {attributes: {type: com.example.reply}}")
    )
    ingress = await start_plane(manifests, namespace, share=None)
    for k in range(2):
        await start_plane(manifests, namespace, serve_ingress=False, share=(k, 2), reply_url=ingress.url)
    ids = [f"e-{n:03d}" for n in range(30)]
    url = f"{ingress.url}/{namespace}/default"
    assert set(await asyncio.gather(*(post_event(http, url, event(id=i, partitionkey=i)) for i in ids))) == {202}
    replies = await subscriber.wait_for("replies", len(ids))
    await asyncio.sleep(0.5)  # a duplicate would show up meanwhile
    assert sorted(r.event.id for r in subscriber.at("first")) == ids  # 3 partitions over 2 dispatchers: each once
    assert sorted(r.event.id for r in replies) == [f"re-{i}" for i in ids]


async def test_serve_with_workers_announces_ready_delivers_and_dies_with_the_supervisor(
    subscriber: Subscriber, namespace: str, kafka_bootstrap: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    manifests = tmp_path / "eventing.yaml"
    manifests.write_text(broker_yaml(namespace) + trigger_yaml(namespace, "sink", f"{subscriber.url}/sink"))
    env = {**os.environ, "SMARTGRID_KAFKA_BOOTSTRAP": kafka_bootstrap}
    supervisor = subprocess.Popen(
        [SMARTGRID, "eventing", "serve", "-f", str(manifests), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "dataplane.log", "ab"), env=env,
    )
    assert supervisor.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(supervisor.stdout.readline), 60)
        assert line.startswith(b"ready http://127.0.0.1:"), line
        workers = children(supervisor.pid)
        assert len(workers) == 2  # the ingress and one dispatcher
        url = f"{line[6:].decode().strip()}/{namespace}/default"
        ids = [f"e-{n:03d}" for n in range(60)]
        statuses = await asyncio.gather(*(post_event(http, url, event(id=i, partitionkey=i)) for i in ids))
        assert set(statuses) == {202}
        received = await subscriber.wait_for("sink", len(ids))
        assert sorted(r.event.id for r in received) == ids
        os.kill(supervisor.pid, signal.SIGKILL)
        await asyncio.to_thread(supervisor.wait, 10)
        deadline = asyncio.get_running_loop().time() + 10
        while any(stat(pid) and stat(pid)[0] != "Z" for pid in workers):
            assert asyncio.get_running_loop().time() < deadline, "a worker outlived its supervisor"
            await asyncio.sleep(0.1)
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            await asyncio.to_thread(supervisor.wait, 30)
