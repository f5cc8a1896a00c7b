"""Benchmark of the local Knative Eventing Kafka data plane, everything on this machine.

    .venv/bin/python bench/eventing_bench.py [--events N] [--rate R] [--seconds S]
                                             [--connections C] [--loadgen-procs P] [--profile] [--probe]

Phases, all in one run against one Kafka (SMARTGRID_KAFKA_BOOTSTRAP, else a Tansu broker
started here, memory storage):
  1. raw Kafka, confluent-kafka, the very records the ingress writes (CloudEvents Kafka
     binary mode: ce_* headers, ~300-byte JSON meter reading, key = partitionkey):
     a. bulk: N records produced to a fresh topic, then read by a fresh consumer; records/s.
     b. pipelined: 64 records in flight acked one by one (like 64 ingress connections) while
        a consumer reads them the way the data plane does; records/s.
     c. produce -> consume latency at R records/s with the data plane's poll settings
        (local/eventing/kafka.py's POLL_BATCH and POLL_TIMEOUT_S), and with a 50 ms poll timeout.
  2. calibration: the load generator against the trivial subscriber directly (the harness
     ceiling: shows neither the load generator nor the subscriber is the limit).
  3. throughput: `smartgrid --log-level warning eventing serve` (subprocess; Broker + one
     unordered Trigger whose subscriber `uri` is the trivial subscriber) fed by a closed-loop
     load generator (separate process(es), C keep-alive connections) POSTing N binary-mode
     events; events/s accepted at ingress, delivered (first to last), end-to-end, exactly-once
     check on the delivered ids, CPU per process and data-plane CPU per event (summed over its
     worker processes, SMARTGRID_EVENTING_WORKERS, and per process). The load generator posts
     with the data plane's own lean client (local/http1.py); the subscriber is a raw
     asyncio Protocol over httptools: the harness costs ~0.1 ms of CPU per event.
  4. latency: open loop at R events/s for S seconds; each event carries `senttime`
     (time.monotonic_ns(): CLOCK_MONOTONIC, one clock for every process of this machine); the
     subscriber records receive - senttime; p50/p90/p99/max.
  5. --profile: another throughput pass with py-spy (--gil --subprocesses: where the Python CPU
     of every data plane process goes).
  6. --probe: the data plane restarted with timing probes patched in at run time (no file is
     changed), one throughput and one latency pass: how long after the send each stage is
     reached (ingress handler, Kafka ack, consume(), delivery start, subscriber answer).

A/B runs: `--dataplane-command CMD` runs CMD instead of .venv/bin/smartgrid (e.g. another
checkout's venv), with the same arguments.

Figures are printed, never asserted. Every child runs in its own session and is stopped
(SIGTERM, then SIGKILL) on every exit path; every wait is bounded. The script is also its
own child processes (`--role subscriber|loadgen|probed-dataplane`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.eventing.kafka import (  # noqa: E402
    CONSUMER_SETTINGS,
    DEFAULT_FETCH_WAIT_MS,
    POLL_BATCH,
    POLL_TIMEOUT_S,
    PRODUCER_SETTINGS,
)

NAMESPACE = "bench"
BROKER = "bench"
PARTITIONS = 10  # the Kafka Broker's default.topic.partitions
METERS = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_THROUGHPUT = 5000.0
GOAL_P99_MS = 50.0
LATENCY_LOAD = 1000.0
PIPELINE_WINDOW = 64


# --- the payload: one smart meter reading in CloudEvents binary mode ------------------------------


def event_http(event_id: str, i: int) -> tuple[dict[str, str], bytes]:
    """HTTP binary-mode headers (without `ce-senttime`) and the ~300-byte JSON body of event i."""
    meter = f"meter-{i % METERS:05d}"
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    body = orjson.dumps(
        {
            "meterId": meter,
            "householdId": f"hh-{(i % METERS) * 7:06d}",
            "feederId": "feeder-12",
            "readingTime": stamp,
            "intervalSeconds": 60,
            "activeImportKwh": round(0.5 + (i % 97) / 100, 4),
            "activeExportKwh": 0.0,
            "voltageV": [230.12, 229.87, 231.02],
            "currentA": [3.512, 3.498, 3.601],
            "frequencyHz": 50.01,
            "powerFactor": 0.973,
            "quality": "measured",
        }
    )
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": f"/smartgrid/meters/{meter}",
        "ce-type": "smartgrid.meter.reading.v1",
        "ce-time": stamp,
        "ce-subject": meter,
        "ce-partitionkey": meter,
        "content-type": "application/json",
    }
    return headers, body


def percentiles(values: Sequence[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles plus max; empty dict when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)
    result = {f"p{p:g}": ordered[min(n - 1, max(0, -(-p * n // 100) - 1))] for p in points}
    result["max"] = ordered[-1]
    return result


def fmt_pct(stats: dict[str, float], unit: str = "ms") -> str:
    if not stats:
        return "n/a"
    return "  ".join(f"{k}={v:.1f}{unit}" for k, v in stats.items() if k != "n")


# --- child role: the trivial subscriber -----------------------------------------------------------


class SubscriberState:
    """What the trivial subscriber saw: ids with their counts, first/last arrival, latencies."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counts: Counter = Counter()
        self.first: int | None = None
        self.last: int | None = None
        self.latencies_ms: list[float] = []

    def received(self, event_id: bytes, sent: bytes | None) -> None:
        now = time.monotonic_ns()
        self.counts[event_id.decode()] += 1
        if sent:
            self.latencies_ms.append((now - int(sent)) / 1e6)
        if self.first is None:
            self.first = now
        self.last = now

    def stats(self, full: bool) -> bytes:
        body: dict = {"received": sum(self.counts.values()), "distinct": len(self.counts),
                      "first_ns": self.first, "last_ns": self.last}
        if full:
            body["ids"] = list(self.counts)
            body["duplicates"] = {k: v for k, v in self.counts.items() if v > 1}
            body["latencies_ms"] = self.latencies_ms
        return orjson.dumps(body)


class SubscriberProtocol(asyncio.Protocol):
    """The trivial subscriber on one connection: a raw asyncio Protocol over httptools, so that
    it costs as little CPU per delivery as possible. 202 to POST /; GET /_stats[?full=1]; POST /_reset."""

    ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

    def __init__(self, state: SubscriberState) -> None:
        import httptools

        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url, self.event_id, self.sent = b"", b"", None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"ce-id":
            self.event_id = value
        elif name == b"ce-senttime":
            self.sent = value

    def on_message_complete(self) -> None:
        url, self.url = self.url, b""
        if url == b"/":
            self.state.received(self.event_id, self.sent)
            answer = self.ACCEPTED
        elif url.startswith(b"/_stats"):
            body = self.state.stats(full=b"full=" in url)
            answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(body)) + body
        else:  # /_reset
            self.state.reset()
            answer = b"HTTP/1.1 204 No Content\r\n\r\n"
        self.event_id, self.sent = b"", None
        assert self.transport is not None
        self.transport.write(answer)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def subscriber_main() -> None:
    """Serves the trivial subscriber until SIGTERM; prints `ready <url>`."""
    from local import aio

    state = SubscriberState()
    server = await asyncio.get_running_loop().create_server(lambda: SubscriberProtocol(state), "127.0.0.1", 0)
    print(f"ready http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await aio.until_stopped()
    finally:
        server.close()


# --- child role: the load generator ---------------------------------------------------------------


async def loadgen_main(args: argparse.Namespace) -> None:
    """Closed loop (`--rate 0`: `--events` as fast as `--connections` allow) or open loop
    (`--rate R --seconds S`: event i is sent at start + i/R, whatever the answers do).
    It posts with the data plane's lean keep-alive client (local/http1.py), at most
    `--connections` requests at a time."""
    from local.http1 import HttpClient

    total = args.events if args.rate <= 0 else int(args.rate * args.seconds)
    prepared = [event_http(f"{args.prefix}{args.first_id + i}", args.first_id + i) for i in range(total)]
    statuses: Counter = Counter()
    failed_ids: list[str] = []
    accepted_ids: list[str] = []
    ack_ms: list[float] = []
    lag_ms: list[float] = []
    first_send: list[int] = []
    last_answer = 0

    client = HttpClient()
    connections = asyncio.Semaphore(args.connections)
    try:

        async def post(i: int) -> None:
            nonlocal last_answer
            headers, body = prepared[i]
            sent = time.monotonic_ns()  # before waiting for a connection: queueing counts as latency
            if not first_send:
                first_send.append(sent)
            headers["ce-senttime"] = str(sent)
            async with connections:
                try:
                    status: int | str = (await client.post(args.url, headers, body, 30.0)).status
                except (OSError, TimeoutError) as error:
                    status = type(error).__name__
            done = time.monotonic_ns()
            last_answer = max(last_answer, done)
            statuses[status] += 1
            ack_ms.append((done - sent) / 1e6)
            (accepted_ids if status == 202 else failed_ids).append(headers["ce-id"])

        delay = (args.start_at - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        cpu0 = time.process_time()
        start = time.monotonic_ns()
        if args.rate <= 0:
            indexes = iter(range(total))

            async def worker() -> None:
                for i in indexes:
                    await post(i)

            await asyncio.gather(*(worker() for _ in range(args.connections)))
        else:
            interval_ns = 1e9 / args.rate
            tasks: set[asyncio.Task[None]] = set()
            i = 0
            while i < total:
                now = time.monotonic_ns()
                due = min(total, int((now - start) / interval_ns) + 1)
                while i < due:
                    lag_ms.append((now - (start + i * interval_ns)) / 1e6)
                    task = asyncio.create_task(post(i))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    i += 1
                wait = (start + i * interval_ns - time.monotonic_ns()) / 1e9
                await asyncio.sleep(max(0.0, wait))
            if tasks:
                await asyncio.wait(tasks, timeout=35)
        cpu = time.process_time() - cpu0
    finally:
        client.close()

    result = {
        "sent": total,
        "statuses": {str(k): v for k, v in statuses.items()},
        "accepted_ids": accepted_ids,
        "failed_ids": failed_ids,
        "first_send_ns": first_send[0] if first_send else start,
        "last_answer_ns": last_answer or time.monotonic_ns(),
        "ack_ms": percentiles(ack_ms),
        "lag_ms": percentiles(lag_ms),
        "cpu_s": cpu,
    }
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()


# --- child role: the data plane with timing probes ------------------------------------------------

STAGES = (
    "1 ingress handler starts",
    "2 Kafka ack resumes the ingress",
    "3 record returned by consume()",
    "4 delivery task starts",
    "5 subscriber answered",
)


def probed_dataplane_main(argv: list[str]) -> int:
    """`smartgrid <argv>` with timing probes wrapped around data-plane methods at run time.

    Nothing on disk changes. Each probe appends milliseconds to a named list; SIGUSR1 writes
    their percentiles to $BENCH_PROBE_OUT (JSON) and clears them. Stage probes measure the time
    since the load generator's `senttime` (request header, Kafka header, event attribute).
    """
    import signal as signals

    from local.cli import main as smartgrid_main
    from local.eventing import dataplane, delivery, ingress, kafka

    out = Path(os.environ["BENCH_PROBE_OUT"])
    samples: dict[str, list[float]] = defaultdict(list)

    def since(sent: str | bytes | None, stage: str) -> None:
        if sent:
            samples[stage].append((time.monotonic_ns() - int(sent)) / 1e6)

    receive = ingress.Ingress._receive

    async def probed_receive(self, request):
        sent = request.headers.get("ce-senttime")
        since(sent, STAGES[0])
        try:
            return await receive(self, request)
        finally:
            since(sent, STAGES[1])

    ingress.Ingress._receive = probed_receive

    class ProducerProbe:
        """Stands in for the confluent Producer: times produce() -> delivery callback."""

        def __init__(self, producer) -> None:
            self._producer = producer

        def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
            produced = time.monotonic_ns()

            def acked(error, message) -> None:
                samples["Kafka ack in the poll thread (produce -> callback)"].append(
                    (time.monotonic_ns() - produced) / 1e6)
                on_delivery(error, message)

            return self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=acked)

        def __getattr__(self, name):
            return getattr(self._producer, name)

    producer_init = kafka.AsyncProducer.__init__

    def probed_producer_init(self, bootstrap) -> None:
        producer_init(self, bootstrap)
        self._producer = ProducerProbe(self._producer)

    kafka.AsyncProducer.__init__ = probed_producer_init

    send = kafka.AsyncProducer.send

    async def probed_send(self, topic, record) -> None:
        started = time.monotonic_ns()
        try:
            await send(self, topic, record)
        finally:
            samples["produce -> ack resumes the coroutine"].append((time.monotonic_ns() - started) / 1e6)

    kafka.AsyncProducer.send = probed_send

    commit_and_poll = kafka.ConsumerLoop._commit_and_poll

    def probed_commit_and_poll(self, due):
        started = time.monotonic_ns()
        messages = commit_and_poll(self, due)
        samples["commit + consume() call (worker thread)"].append((time.monotonic_ns() - started) / 1e6)
        samples["records per consume()"].append(float(len(messages)))
        for message in messages[::8]:  # every 8th record: this runs in the worker thread, under the GIL
            if message.error() is None:
                since(next((v for k, v in message.headers() or () if k == "ce_senttime"), None), STAGES[2])
        return messages

    kafka.ConsumerLoop._commit_and_poll = probed_commit_and_poll

    commit = kafka.ConsumerLoop._commit

    def probed_commit(self, due) -> None:
        started = time.monotonic_ns()
        commit(self, due)
        if due:
            samples["sync commit (worker thread)"].append((time.monotonic_ns() - started) / 1e6)

    kafka.ConsumerLoop._commit = probed_commit

    deliver = delivery.Deliverer.deliver

    async def probed_deliver(self, event, route) -> None:
        sent = event.attributes.get("senttime")
        since(sent, STAGES[3])
        try:
            await deliver(self, event, route)
        finally:
            since(sent, STAGES[4])

    delivery.Deliverer.deliver = probed_deliver

    start = dataplane.DataPlane.start

    async def probed_start(self) -> str:
        url = await start(self)
        loop = asyncio.get_running_loop()

        async def lag() -> None:
            while True:
                before = time.monotonic_ns()
                await asyncio.sleep(0.005)
                samples["event loop lag (5 ms sleep overshoot)"].append((time.monotonic_ns() - before) / 1e6 - 5)

        def dump() -> None:
            report = {name: {**percentiles(values), "n": len(values), "mean": sum(values) / max(1, len(values))}
                      for name, values in samples.items()}
            samples.clear()
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(report))
            tmp.replace(out)

        self._bench_lag = asyncio.create_task(lag())
        loop.add_signal_handler(signals.SIGUSR1, dump)
        return url

    dataplane.DataPlane.start = probed_start
    return smartgrid_main(argv)


# --- process handling ---------------------------------------------------------------------------


class Child:
    """A child process in its own session; `stop` sends SIGTERM, then SIGKILL to its group."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 stdout_pipe: bool = True) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE if stdout_pipe else err, stderr=err, env=env,
                start_new_session=True, cwd=REPO,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float) -> str:
        """The URL of the first `ready <url>` line on stdout."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                buffer += chunk
                for line in buffer.splitlines():
                    if line.startswith(b"ready "):
                        return line[6:].decode().strip()
                if not chunk and self.proc.poll() is not None:
                    break
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s; log:\n{tail(self.log)}")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (the data plane drains and commits), then SIGKILL to its process group."""
        if self.proc.poll() is None:
            _signal(self.proc.pid, signal.SIGTERM, group=False)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"  ({self.name} ignored SIGTERM for {grace:.0f} s: killed)", flush=True)
                _signal(self.proc.pid, signal.SIGKILL, group=True)  # not reaped yet: the group is still its own
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _signal(pid: int, signum: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def plane_log_problems(log: Path, first: int = 5) -> str:
    """How many warnings and errors the data plane logged, and the first few of them."""
    try:
        problems = [line for line in log.read_text(errors="replace").splitlines()
                    if " WARNING " in line or " ERROR " in line]
    except OSError:
        return "data plane log: none"
    shown = "".join(f"\n  {line[:300]}" for line in problems[:first])
    return f"data plane log: {len(problems)} warnings/errors{shown}"


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the data plane's worker processes)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    stat = stream.read()
            except OSError:
                continue
            children[int(stat[stat.rindex(")") + 2:].split()[1])].append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def thread_cpu(pid: int) -> dict[int, tuple[str, float, float, int]]:
    """tid -> (thread name, CPU seconds, seconds spent runnable but waiting for a CPU, its process)
    of a live process and its descendants; {} when it is gone."""
    result: dict[int, tuple[str, float, float, int]] = {}
    for process in process_tree(pid):
        try:
            tids = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{process}/task/{tid}/stat") as stream:
                    stat = stream.read()
                with open(f"/proc/{process}/task/{tid}/schedstat") as stream:
                    waited = int(stream.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
            name = stat[stat.index("(") + 1: stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            result[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK, waited, process)
    return result


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (steal counts as busy)."""
    with open("/proc/stat") as stream:
        fields = [int(x) for x in stream.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def child_pids_named(fragment: str) -> list[int]:
    """Direct children of this process whose command name contains `fragment` (the Tansu we started)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                stat = stream.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == me and fragment in name:
            found.append(int(entry))
    return found


class CpuMeter:
    """CPU used by a set of processes between `start` and `stop`, per thread group, and how long
    their main (event-loop) threads were runnable but waited for a CPU (scheduler run queue)."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.before: dict[str, dict[int, tuple[str, float, float, int]]] = {}
        self.after: dict[str, dict[int, tuple[str, float, float, int]]] = {}
        self.machine = ((0, 0), (0, 0))
        self.own = (0.0, 0.0)
        self.wall = (0.0, 0.0)

    def start(self) -> None:
        self.before = {name: thread_cpu(pid) for name, pid in self.processes.items()}
        self.machine = (machine_cpu(), (0, 0))
        self.own = (time.process_time(), 0.0)
        self.wall = (time.monotonic(), 0.0)

    def stop(self) -> None:
        self.after = {name: thread_cpu(pid) for name, pid in self.processes.items()}
        self.machine = (self.machine[0], machine_cpu())
        self.own = (self.own[0], time.process_time())
        self.wall = (self.wall[0], time.monotonic())

    def used(self, name: str) -> dict[str, float]:
        """CPU seconds of one process (with its worker processes): total, main threads, librdkafka
        threads, other threads, the main threads' wait."""
        before = self.before.get(name, {})
        result = defaultdict(float)
        for tid, (thread, seconds, waited, process) in self.after.get(name, {}).items():
            _, seconds0, waited0, _ = before.get(tid, (thread, 0.0, 0.0, process))
            result["total"] += seconds - seconds0
            if tid == process:
                result["main"] += seconds - seconds0
                result["main_wait"] += waited - waited0
            elif thread.startswith("rdk:"):
                result["librdkafka"] += seconds - seconds0
            else:
                result["other"] += seconds - seconds0
        return result

    def per_process(self, name: str) -> dict[int, float]:
        """CPU seconds of each process of one process tree, by pid (the root's first)."""
        before = self.before.get(name, {})
        result: dict[int, float] = defaultdict(float)
        for tid, (thread, seconds, waited, process) in self.after.get(name, {}).items():
            result[process] += seconds - before.get(tid, (thread, 0.0, 0.0, process))[1]
        return dict(sorted(result.items()))

    @property
    def seconds(self) -> float:
        return self.wall[1] - self.wall[0]

    def report(self, loadgen_cpu_s: float | None = None) -> list[str]:
        wall = self.seconds
        (busy0, total0), (busy1, total1) = self.machine
        cores = os.cpu_count() or 1
        machine = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        ours = sum(self.used(name)["total"] for name in self.processes) + (loadgen_cpu_s or 0.0)
        ours += self.own[1] - self.own[0]
        lines = [f"CPU over {wall:.1f} s ({cores} cores = {100 * cores}%): whole machine {machine:.0f}% busy, "
                 f"of which ~{max(0.0, machine - 100 * ours / wall):.0f}% outside the processes below "
                 "(kernel network work, other programs)"]
        for name in self.processes:
            used = self.used(name)
            line = f"  {name:<11} {100 * used['total'] / wall:4.0f}%"
            if name != "tansu":
                parts = [("main thread", used["main"]), ("librdkafka threads", used["librdkafka"]),
                         ("other threads", used["other"])]
                detail = ", ".join(f"{label} {100 * v / wall:.0f}%" for label, v in parts if v > 0.005)
                line += (f"  ({detail}); its main thread also waited for a CPU "
                         f"{100 * used['main_wait'] / wall:.0f}% of the time")
            lines.append(line)
        if loadgen_cpu_s is not None:
            lines.append(f"  {'loadgen':<11} {100 * loadgen_cpu_s / wall:4.0f}%  (its own process time)")
        return lines


# --- orchestration helpers ------------------------------------------------------------------------


def http_json(url: str, method: str = "GET", timeout: float = 10.0) -> dict:
    import urllib.request

    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return orjson.loads(raw) if raw else {}


def run_loadgen(url: str, *, prefix: str, events: int = 0, rate: float = 0.0, seconds: float = 0.0,
                connections: int, procs: int, log: Path, on_start: Callable[[], None] | None = None) -> dict:
    """Run `procs` load generator processes that start together; their merged results."""
    total = events if rate <= 0 else int(rate * seconds)
    start_at = time.monotonic_ns() + int(1.5e9)  # leaves time for the imports of every process
    children, first = [], 0
    try:
        for n in range(procs):
            share = total // procs + (1 if n < total % procs else 0)
            argv = [sys.executable, __file__, "--role", "loadgen", "--url", url, "--prefix", prefix,
                    "--first-id", str(first), "--events", str(share),
                    "--connections", str(max(1, connections // procs)),
                    "--rate", str(rate / procs if rate > 0 else 0), "--seconds", str(seconds),
                    "--start-at", str(start_at)]
            children.append(Child(f"loadgen-{n}", argv, log))
            first += share
        time.sleep(max(0.0, (start_at - time.monotonic_ns()) / 1e9))
        if on_start is not None:
            on_start()
        limit = 60 + (seconds if rate > 0 else events / 200)
        results = []
        for child in children:
            out, _ = child.proc.communicate(timeout=limit)
            if child.proc.returncode != 0 or not out.strip():
                raise RuntimeError(f"{child.name} failed (exit {child.proc.returncode}); log:\n{tail(log)}")
            results.append(orjson.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            child.stop(grace=2)
    merged = {
        "sent": sum(r["sent"] for r in results),
        "statuses": sum((Counter(r["statuses"]) for r in results), Counter()),
        "accepted_ids": [i for r in results for i in r["accepted_ids"]],
        "failed_ids": [i for r in results for i in r["failed_ids"]],
        "first_send_ns": min(r["first_send_ns"] for r in results),
        "last_answer_ns": max(r["last_answer_ns"] for r in results),
        "cpu_s": sum(r["cpu_s"] for r in results),
        # several processes: the worst of each percentile (an upper bound, not a merge)
        "ack_ms": {k: max(r["ack_ms"].get(k, 0) for r in results) for k in results[0]["ack_ms"]},
        "lag_ms": {k: max(r["lag_ms"].get(k, 0) for r in results) for k in results[0]["lag_ms"]},
    }
    span = (merged["last_answer_ns"] - merged["first_send_ns"]) / 1e9
    merged["accept_rate"] = len(merged["accepted_ids"]) / span if span > 0 else 0.0
    merged["accept_s"] = span
    return merged


def wait_delivered(subscriber: str, expected: int, stall_s: float, limit_s: float,
                   on_done: Callable[[], None] | None = None) -> dict:
    """Poll the subscriber until `expected` events arrived, or none arrived for `stall_s`."""
    deadline = time.monotonic() + limit_s
    last_count, last_change = -1, time.monotonic()
    while True:
        stats = http_json(f"{subscriber}/_stats")
        if stats["received"] != last_count:
            last_count, last_change = stats["received"], time.monotonic()
        if stats["received"] >= expected or time.monotonic() - last_change > stall_s or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if on_done is not None:
        on_done()
    time.sleep(0.5)  # lets a late duplicate show up
    return http_json(f"{subscriber}/_stats?full=1")


def exactly_once(loadgen: dict, stats: dict) -> dict[str, int]:
    """Distinct delivered ids, duplicates, missing and unexpected ones against those accepted (202)."""
    accepted = set(loadgen["accepted_ids"])
    delivered = set(stats["ids"])
    return {
        "distinct": len(delivered),
        "duplicates": sum(count - 1 for count in stats["duplicates"].values()),
        "missing": len(accepted - delivered),
        "unexpected": len(delivered - accepted - set(loadgen["failed_ids"])),
    }


def write_manifests(folder: Path, subscriber: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        metadata:
          name: {BROKER}
          namespace: {NAMESPACE}
          annotations:
            eventing.knative.dev/broker.class: Kafka
        ---
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata:
          name: bench-sink
          namespace: {NAMESPACE}
          annotations:
            kafka.eventing.knative.dev/delivery.order: unordered
        spec:
          broker: {BROKER}
          subscriber:
            uri: {subscriber}/
        """))


@contextmanager
def kafka(tmp: Path) -> Iterator[tuple[str, str]]:
    from local.servers.kafka import kafka_server

    given = os.environ.get("SMARTGRID_KAFKA_BOOTSTRAP") or None
    with kafka_server(given, tmp) as bootstrap:
        yield bootstrap, ("from SMARTGRID_KAFKA_BOOTSTRAP" if given else "Tansu started here, memory storage")


# --- phase 1: raw Kafka ---------------------------------------------------------------------------


def kafka_records(prefix: str, count: int) -> list:
    """`count` records exactly as the ingress writes them (`ce_senttime` is set when sent)."""
    from shared.cloudevents import from_http, to_kafka

    records = []
    for i in range(count):
        headers, body = event_http(f"{prefix}{i}", i)
        headers["ce-senttime"] = "0"
        records.append(to_kafka(from_http(headers, body)))
    return records


def producer_config(bootstrap: str) -> dict:
    """The data plane's producer settings (local/eventing/kafka.py AsyncProducer), quiet on close."""
    return {"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS, "log.connection.close": False}


def consumer_config(bootstrap: str, group: str) -> dict:
    """The data plane's consumer settings (local/eventing/kafka.py ConsumerLoop)."""
    return {"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER_SETTINGS,
            "fetch.wait.max.ms": DEFAULT_FETCH_WAIT_MS}


def raw_bulk(bootstrap: str, events: int) -> dict:
    """Produce `events` records as fast as librdkafka batches them, flush, then read them all."""
    from confluent_kafka import (
        OFFSET_BEGINNING,
        Consumer,
        KafkaError,
        Producer,
        TopicPartition,
    )

    from local.eventing.kafka import ensure_topics

    topic = f"bench-raw-{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap, {topic: PARTITIONS})
    records = kafka_records("raw-", events)
    producer = Producer(producer_config(bootstrap))
    errors: Counter = Counter()

    def on_delivery(error, _message) -> None:
        if error is not None:
            errors[error.str()] += 1

    producer.list_topics(topic, timeout=10)  # metadata outside the timing
    start = time.perf_counter()
    for n, record in enumerate(records):
        while True:
            try:
                producer.produce(topic, value=record.value, key=record.key, headers=record.headers,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if n % 1000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    produce_s = time.perf_counter() - start

    consumer = Consumer(consumer_config(bootstrap, f"{topic}-reader"))
    consumer.list_topics(topic, timeout=10)
    start = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got, deadline = 0, time.monotonic() + 60
    while got < events - left and time.monotonic() < deadline:
        for message in consumer.consume(POLL_BATCH, POLL_TIMEOUT_S):
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    errors[message.error().str()] += 1
                continue
            message.headers(), message.value()
            got += 1
    consume_s = time.perf_counter() - start
    consumer.close()
    return {
        "value_bytes": sum(len(r.value or b"") for r in records) / len(records),
        "header_bytes": sum(len(k) + len(v) for r in records for k, v in r.headers) / len(records),
        "headers": len(records[0].headers),
        "produced": events - left, "produce_rate": (events - left) / produce_s, "produce_s": produce_s,
        "consumed": got, "consume_rate": got / consume_s, "consume_s": consume_s, "errors": dict(errors),
    }


def raw_pipeline(bootstrap: str, *, events: int = 0, window: int = 0, rate: float = 0.0, seconds: float = 0.0,
                 consume_timeout: float = POLL_TIMEOUT_S) -> dict:
    """Produce and consume at the same time, the way the data plane does, without the data plane.

    window > 0: closed loop, `events` records, each ack sends the next one (`window` in flight,
    like that many ingress connections). rate > 0: open loop at `rate` records/s for `seconds`.
    A consumer thread runs the data plane's loop (sync commit, then consume(500, timeout));
    records carry their send time, so it measures produce -> consume latency.
    """
    import threading

    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    from local.eventing.kafka import ensure_topics

    total = events if window > 0 else int(rate * seconds)
    records = kafka_records("pipe-", total)
    topic = f"bench-pipe-{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap, {topic: PARTITIONS})
    producer = Producer(producer_config(bootstrap))
    consumer = Consumer(consumer_config(bootstrap, f"{topic}-reader"))
    producer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])  # a fresh topic
    consumer.consume(1, 1.0)  # connects and starts fetching before the first record is sent
    acks_ms: list[float] = []
    e2e_ms: list[float] = []
    state = {"sent": 0, "acked": 0, "consumed": 0, "errors": 0}
    stop = threading.Event()

    def consume() -> None:
        due: dict[int, int] = {}
        while state["consumed"] < total and not stop.is_set():
            if due:
                consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in due.items()], asynchronous=False)
                due = {}
            batch = consumer.consume(500, consume_timeout)
            now = time.monotonic_ns()
            for message in batch:
                if message.error() is not None:
                    continue
                sent = next((v for k, v in message.headers() or () if k == "ce_senttime"), b"0")
                e2e_ms.append((now - int(sent)) / 1e6)
                due[message.partition()] = message.offset() + 1
                state["consumed"] += 1

    def send(i: int) -> None:
        record = records[i]
        sent = time.monotonic_ns()
        headers = [(k, str(sent).encode()) if k == "ce_senttime" else (k, v) for k, v in record.headers]

        def on_delivery(error, _message) -> None:
            acks_ms.append((time.monotonic_ns() - sent) / 1e6)
            state["acked"] += 1
            if error is not None:
                state["errors"] += 1
            if window > 0 and state["sent"] < total:
                state["sent"] += 1
                send(state["sent"] - 1)

        producer.produce(topic, value=record.value, key=record.key, headers=headers, on_delivery=on_delivery)

    reader = threading.Thread(target=consume, name="bench-consumer", daemon=True)
    reader.start()
    start = time.monotonic_ns()
    deadline = time.monotonic() + 60 + seconds
    if window > 0:
        for _ in range(min(window, total)):
            state["sent"] += 1
            send(state["sent"] - 1)
    else:
        interval = 1e9 / rate
        for i in range(total):
            while time.monotonic_ns() < start + i * interval:
                producer.poll(0.0002)
            state["sent"] += 1
            send(i)
    while state["acked"] < total and time.monotonic() < deadline:
        producer.poll(0.01)
    acked_at = time.monotonic_ns()
    seen, quiet_since = -1, time.monotonic()
    while reader.is_alive() and time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
        if state["consumed"] != seen:
            seen, quiet_since = state["consumed"], time.monotonic()
        reader.join(0.05)
    consumed_at = time.monotonic_ns()
    stop.set()
    reader.join(5)
    consumer.close()
    return {
        "records": total, "acked": state["acked"], "consumed": state["consumed"], "errors": state["errors"],
        "ack_rate": state["acked"] / ((acked_at - start) / 1e9),
        "consume_rate": state["consumed"] / ((consumed_at - start) / 1e9),
        "ack_ms": percentiles(acks_ms), "e2e_ms": percentiles(e2e_ms),
    }


# --- py-spy ---------------------------------------------------------------------------------------

STAGE_RULES = (
    ("delivery: POST to the subscriber (Deliverer, tenacity, aiohttp client)",
     ("Deliverer.", "tenacity/", "aiohttp/client", "aiohttp/connector")),
    ("ingress: HTTP server, CloudEvent parse, produce", ("Ingress.", "aiohttp/web_")),
    ("producer: produce() and ack callbacks", ("AsyncProducer", "_settle")),
    ("consumer: commit/consume hand-off, dispatch, from_kafka, filter",
     ("ConsumerLoop", "_broker_event", "from_kafka", "concurrent/futures", "filters.py", "offsets.py")),
)


def summarize_pyspy(raw_file: Path, cpu_ms_per_event: float, top: int = 16) -> list[str]:
    """Shares of the GIL-holding samples by pipeline stage, by function (self) and inclusive."""
    self_counts: Counter = Counter()
    inclusive: Counter = Counter()
    stages: Counter = Counter()
    total = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("thread (")]
        if not frames:
            continue
        count = int(count_text)
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        joined = ";".join(frames)
        stages[next((label for label, keys in STAGE_RULES if any(k in joined for k in keys)),
                    "event loop itself (uvloop, asyncio scheduling) and other")] += count
    if not total:
        return ["  (py-spy collected no samples)"]
    lines = [f"  {total} samples of the GIL holder; by pipeline stage (share, ~ms of Python CPU per event):"]
    lines += [f"    {100 * c / total:5.1f}%  {cpu_ms_per_event * c / total:6.3f} ms  {stage}"
              for stage, c in stages.most_common()]
    lines.append("  functions by self time:")
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in self_counts.most_common(top)]
    lines.append("  data plane, cloudevents and tenacity functions by inclusive time:")
    own = [(f, c) for f, c in inclusive.most_common()
           if any(k in f for k in ("local/eventing", "shared/", "tenacity")) and "_serve" not in f]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own[:top]]
    return lines


def _frame(raw: str) -> str:
    """`func (path/to/file.py:123)` -> `func (short/path.py)`."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# --- the run --------------------------------------------------------------------------------------


def main() -> int:
    if sys.argv[1:3] == ["--role", "probed-dataplane"]:
        return probed_dataplane_main(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events of the raw Kafka and throughput phases")
    parser.add_argument("--rate", type=float, default=LATENCY_LOAD, help="offered load of the latency phase, events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--connections", type=int, default=64, help="load generator keep-alive connections")
    parser.add_argument("--loadgen-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--profile", action="store_true", help="add a throughput pass sampled by py-spy")
    parser.add_argument("--probe", action="store_true", help="add passes with timing probes in the data plane")
    parser.add_argument("--dataplane-command", default="",
                        help="command run instead of .venv/bin/smartgrid (A/B runs against another checkout)")
    parser.add_argument("--role", choices=["bench", "subscriber", "loadgen"], default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="ev-", help=argparse.SUPPRESS)
    parser.add_argument("--first-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from local import aio

    if args.role == "subscriber":
        aio.run(subscriber_main())
        return 0
    if args.role == "loadgen":
        aio.run(loadgen_main(args))
        return 0

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="eventing-bench-") as tmp_name, ExitStack() as stack:
        return Bench(args, Path(tmp_name), stack).run()


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, stack: ExitStack) -> None:
        self.args = args
        self.tmp = tmp
        self.stack = stack
        self.lg = dict(connections=args.connections, procs=args.loadgen_procs, log=tmp / "loadgen.log")
        self.processes: dict[str, int] = {}
        self.plane: Child | None = None
        self.ingress = ""
        self.sub_url = ""
        self.bootstrap = ""
        self.tansu_pid: int | None = None
        self.harness_ms: dict[str, float] = {}
        self.began = time.monotonic()

    def clock(self) -> str:
        return f"(t+{time.monotonic() - self.began:.0f} s)"

    def tansu_cpu(self, measure: Callable[[], dict]) -> tuple[dict, str]:
        """Run `measure` and say how much CPU the Tansu started here used per record."""
        if self.tansu_pid is None:
            return measure(), ""
        meter = CpuMeter({"tansu": self.tansu_pid})
        meter.start()
        result = measure()
        meter.stop()
        records = max(1, result.get("consumed") or result.get("records") or 1)
        used = meter.used("tansu")["total"]
        return result, f"; Tansu {1000 * used / records:.3f} ms CPU/record ({100 * used / meter.seconds:.0f}%)"

    def run(self) -> int:
        args, began = self.args, time.monotonic()
        cores = os.cpu_count() or 1
        print(f"eventing bench: {cores} CPUs, Python {sys.version.split()[0]}, events={args.events}, latency load "
              f"{args.rate:g}/s for {args.seconds:g} s, load generator {args.loadgen_procs} process(es) x "
              f"{args.connections // args.loadgen_procs} keep-alive connections", flush=True)
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        idle_check = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        print(f"machine busy before the bench starts anything: {idle_check:.0f}% of {100 * cores}% "
              f"(load average {os.getloadavg()[0]:.2f}){'  <- other work is running: figures will be lower and noisier' if idle_check > 15 else ''}",
              flush=True)
        self.bootstrap, origin = self.stack.enter_context(kafka(self.tmp))
        tansu = child_pids_named("tansu")
        self.tansu_pid = tansu[0] if tansu else None
        print(f"kafka: {self.bootstrap} ({origin})", flush=True)

        raw, pipe, raw_lat = self.raw_phase()

        subscriber = Child("subscriber", [sys.executable, __file__, "--role", "subscriber"], self.tmp / "subscriber.log")
        self.stack.callback(subscriber.stop)
        self.sub_url = subscriber.wait_ready(30)
        self.processes = {"data plane": 0, "subscriber": subscriber.pid}
        if tansu:
            self.processes["tansu"] = tansu[0]

        calib_events = min(args.events, 10000)
        print(f"\n[2] {self.clock()} calibration: load generator -> trivial subscriber directly, {calib_events} events, closed loop",
              flush=True)
        meter = CpuMeter({"subscriber": subscriber.pid})
        calib = run_loadgen(self.sub_url + "/", prefix="cal-", events=calib_events, on_start=meter.start, **self.lg)
        meter.stop()
        sub_cpu = meter.used("subscriber")["total"]
        http_json(f"{self.sub_url}/_reset", "POST")
        print(f"  {calib['accept_rate']:,.0f} requests/s; answer time {fmt_pct(calib['ack_ms'])}")
        self.harness_ms = {"load generator": 1000 * calib["cpu_s"] / calib_events,
                           "subscriber": 1000 * sub_cpu / calib_events}
        print(f"  CPU per request: load generator {1000 * calib['cpu_s'] / calib_events:.3f} ms "
              f"(one process tops out near {calib_events / max(1e-9, calib['cpu_s']):,.0f}/s), "
              f"subscriber {1000 * sub_cpu / calib_events:.3f} ms")

        manifests = self.tmp / "manifests"
        write_manifests(manifests, self.sub_url)
        command = shlex.split(args.dataplane_command) or [str(Path(sys.executable).with_name("smartgrid"))]
        self.start_plane(command)
        print(f"\ndata plane: `{shlex.join(Path(c).name for c in command)} --log-level warning eventing serve` "
              f"at {self.ingress}\n  (log level warning: the per-event info logs are off); "
              f"Trigger unordered -> {self.sub_url}/"
              + (f"\n  BENCH_VARIANT={os.environ['BENCH_VARIANT']}" if os.environ.get("BENCH_VARIANT") else ""),
              flush=True)

        print(f"\n[3] {self.clock()} throughput: {args.events} events, closed loop, ingress -> Kafka -> Trigger -> subscriber",
              flush=True)
        tp = self.throughput_pass("tp-")
        print("\n".join(tp["lines"]))

        print(f"\n[4] {self.clock()} latency: open loop at {args.rate:g} events/s for {args.seconds:g} s", flush=True)
        lat = self.latency_pass("lat-")
        print("\n".join(lat["lines"]))

        profile_lines = self.profile_pass() if args.profile else []
        probe_lines = self.probe_passes() if args.probe else []

        self.summary(raw, pipe, raw_lat, calib, tp, lat)
        print(plane_log_problems(self.tmp / "dataplane.log"))
        for lines in (profile_lines, probe_lines):
            if lines:
                print("\n".join(lines))
        print(f"\nbench took {time.monotonic() - began:.0f} s", flush=True)
        return 0

    # phases ------------------------------------------------------------------------------------

    def raw_phase(self) -> tuple[dict, dict, dict]:
        args = self.args
        print(f"\n[1] {self.clock()} raw Kafka with confluent-kafka, the records the ingress writes, the data plane's client settings "
              f"(producer {PRODUCER_SETTINGS}; {PARTITIONS} partitions, key = partitionkey)", flush=True)
        raw = raw_bulk(self.bootstrap, args.events)
        print(f"  record: {raw['headers']} headers ({raw['header_bytes']:.0f} bytes) + "
              f"{raw['value_bytes']:.0f}-byte JSON value")
        print(f"  a. bulk produce: {raw['produced']} records in {raw['produce_s']:.2f} s = "
              f"{raw['produce_rate']:,.0f} records/s (fire and forget, then flush)")
        print(f"     bulk consume: {raw['consumed']} records in {raw['consume_s']:.2f} s = "
              f"{raw['consume_rate']:,.0f} records/s (fresh consumer from the beginning)")
        if raw["errors"]:
            print(f"     errors: {raw['errors']}")
        pipe, tansu = self.tansu_cpu(lambda: raw_pipeline(self.bootstrap, events=args.events, window=PIPELINE_WINDOW))
        print(f"  b. pipelined: {PIPELINE_WINDOW} records in flight, each ack sends the next, a consumer reading "
              f"meanwhile: {pipe['ack_rate']:,.0f} records/s acked, {pipe['consume_rate']:,.0f} records/s consumed "
              f"({pipe['consumed']} of {pipe['records']})\n"
              f"     ack {fmt_pct(pipe['ack_ms'])}{tansu}")
        seconds = min(args.seconds, 3.0)
        raw_lat = {}
        for label, timeout in ((f"data plane's consume({POLL_BATCH}, {POLL_TIMEOUT_S * 1000:g} ms)", POLL_TIMEOUT_S),
                               ("consume(500, 50 ms)", 0.05)):
            result, tansu = self.tansu_cpu(
                lambda: raw_pipeline(self.bootstrap, rate=args.rate, seconds=seconds, consume_timeout=timeout))
            raw_lat[timeout] = result
            short = "" if result["consumed"] == result["records"] else \
                f" (only {result['consumed']} of {result['records']} consumed)"
            print(f"  c. produce -> consume at {args.rate:g}/s for {seconds:g} s, {label} + sync commit per batch: "
                  f"{fmt_pct(result['e2e_ms'])}{short}\n     (ack {fmt_pct(result['ack_ms'])}){tansu}", flush=True)
        gc.collect()  # frees the producers (callback cycles) before the data plane runs
        return raw, pipe, raw_lat

    def start_plane(self, command: list[str], env_extra: dict[str, str] | None = None) -> None:
        env = {**os.environ, "SMARTGRID_KAFKA_BOOTSTRAP": self.bootstrap, "SMARTGRID_STATE_DIR": str(self.tmp / "state"),
               **(env_extra or {})}
        plane = Child("data plane", [*command, "--log-level", "warning", "eventing", "serve",
                                     "-f", str(self.tmp / "manifests"), "--ingress-port", "0"],
                      self.tmp / "dataplane.log", env=env)
        self.stack.callback(plane.stop)
        self.plane = plane
        self.ingress = f"{plane.wait_ready(60)}/{NAMESPACE}/{BROKER}"
        self.processes["data plane"] = plane.pid
        warm = run_loadgen(self.ingress, prefix=f"warm-{plane.pid}-", events=1000, **self.lg)
        wait_delivered(self.sub_url, len(warm["accepted_ids"]), stall_s=5, limit_s=30)
        http_json(f"{self.sub_url}/_reset", "POST")

    def throughput_pass(self, prefix: str) -> dict:
        http_json(f"{self.sub_url}/_reset", "POST")
        meter = CpuMeter(self.processes)
        run = run_loadgen(self.ingress, prefix=prefix, events=self.args.events, on_start=meter.start, **self.lg)
        stats = wait_delivered(self.sub_url, len(run["accepted_ids"]), stall_s=10, limit_s=120, on_done=meter.stop)
        check = exactly_once(run, stats)
        deliver_s = ((stats["last_ns"] or 0) - (stats["first_ns"] or 0)) / 1e9
        e2e_s = ((stats["last_ns"] or 0) - run["first_send_ns"]) / 1e9
        plane = meter.used("data plane")
        delivered = max(1, check["distinct"])
        run.update(
            check=check, delivered=stats["received"], meter=meter, plane_cpu=plane,
            deliver_rate=stats["received"] / deliver_s if deliver_s > 0 else 0.0,
            e2e_rate=check["distinct"] / e2e_s if e2e_s > 0 else 0.0, e2e_s=e2e_s,
            cpu_ms_per_event=1000 * plane["total"] / delivered,
            main_ms_per_event=1000 * plane["main"] / delivered,
        )
        lines = [
            f"  ingress: {len(run['accepted_ids'])} accepted (202) in {run['accept_s']:.2f} s = "
            f"{run['accept_rate']:,.0f} events/s; statuses {dict(run['statuses'])}",
            f"    answer time (POST -> 202, after the Kafka ack) {fmt_pct(run['ack_ms'])}",
            f"  delivered: {stats['received']} events, first->last delivery = {run['deliver_rate']:,.0f} events/s; "
            f"first send->last delivery {e2e_s:.2f} s = {run['e2e_rate']:,.0f} events/s end to end",
            f"  exactly once: distinct {check['distinct']} of {len(run['accepted_ids'])} accepted, "
            f"duplicates {check['duplicates']}, missing {check['missing']}, unexpected {check['unexpected']}",
        ]
        if check["duplicates"] or check["missing"]:
            missing = sorted(set(run["accepted_ids"]) - set(stats["ids"]))[:10]
            lines.append(f"    duplicated (first 10): {list(stats['duplicates'].items())[:10]}; "
                         f"missing (first 10): {missing}")
        lines.append(f"  send -> receive under this load: {fmt_pct(percentiles(stats['latencies_ms']))}")
        processes = meter.per_process("data plane")
        if len(processes) > 1:  # the supervisor, then its workers in the order they were forked
            roles = ["supervisor", "ingress"] + [f"dispatcher {k}" for k in range(1, len(processes) - 1)]
            lines.append("  data plane CPU per event by process: " + ", ".join(
                f"{role} {1000 * cpu / delivered:.3f} ms" for role, cpu in zip(roles, processes.values())))
        lines.append(f"  data plane CPU per event: {run['cpu_ms_per_event']:.3f} ms, of which main threads "
                     f"{run['main_ms_per_event']:.3f} ms (one GIL-bound event loop per process: "
                     f"<= {1000 / run['main_ms_per_event']:,.0f} events/s even with a whole core)")
        if "tansu" in self.processes:
            run["tansu_ms_per_event"] = 1000 * meter.used("tansu")["total"] / delivered
            lines.append(f"  Tansu CPU per event: {run['tansu_ms_per_event']:.3f} ms "
                         "(its share of produce requests, fetches and offset commits)")
        lines += ["  " + line for line in meter.report(run["cpu_s"])]
        run["lines"] = lines
        return run

    def latency_pass(self, prefix: str) -> dict:
        args = self.args
        http_json(f"{self.sub_url}/_reset", "POST")
        meter = CpuMeter(self.processes)
        run = run_loadgen(self.ingress, prefix=prefix, rate=args.rate, seconds=args.seconds, on_start=meter.start,
                          **self.lg)
        stats = wait_delivered(self.sub_url, len(run["accepted_ids"]), stall_s=10, limit_s=60, on_done=meter.stop)
        check = exactly_once(run, stats)
        run.update(check=check, e2e_ms=percentiles(stats["latencies_ms"]), offered=run["sent"] / args.seconds,
                   meter=meter)
        run["lines"] = [
            f"  sent {run['sent']} ({run['offered']:,.0f}/s offered), accepted {len(run['accepted_ids'])}, "
            f"statuses {dict(run['statuses'])}",
            f"  load generator lag behind its schedule: {fmt_pct(run['lag_ms'])}",
            f"  ingress answer time (POST -> 202): {fmt_pct(run['ack_ms'])}",
            f"  end to end (send -> subscriber receive): {fmt_pct(run['e2e_ms'])}  ({len(stats['latencies_ms'])} events)",
            f"  exactly once: distinct {check['distinct']}, duplicates {check['duplicates']}, "
            f"missing {check['missing']}, unexpected {check['unexpected']}",
            *("  " + line for line in meter.report(run["cpu_s"])),
        ]
        return run

    def profile_pass(self) -> list[str]:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            return ["\n[5] profile: py-spy not found (.venv/bin/pip install py-spy)"]
        assert self.plane is not None
        print(f"\n[5] {self.clock()} profile: throughput pass again, py-spy sampling the data plane's GIL holder "
              "(--gil, 250 Hz, --nonblocking)", flush=True)
        out, spy_log = self.tmp / "pyspy.txt", self.tmp / "pyspy.log"
        sampler = Child("py-spy", [spy, "record", "--pid", str(self.plane.pid), "--subprocesses", "--gil", "--rate", "250",
                                   "--nonblocking", "--format", "raw", "--output", str(out), "--duration", "300"],
                        spy_log, stdout_pipe=False)
        try:
            time.sleep(1.0)
            tp = self.throughput_pass("prof-")
        finally:
            _signal(sampler.pid, signal.SIGINT, group=False)  # py-spy writes its output on SIGINT
            try:
                sampler.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            sampler.stop(grace=2)
        print("\n".join(tp["lines"][:3]))
        lines = ["\ndata plane profile (py-spy --gil during the profiled throughput pass, "
                 f"{tp['accept_rate']:,.0f} events/s):"]
        python_ms = 1000 * (tp["plane_cpu"]["main"] + tp["plane_cpu"]["other"]) / max(1, tp["check"]["distinct"])
        lines += summarize_pyspy(out, python_ms) if out.exists() else [f"  py-spy wrote nothing:\n{tail(spy_log)}"]
        return lines

    def probe_passes(self) -> list[str]:
        assert self.plane is not None
        print(f"\n[6] {self.clock()} probes: data plane restarted with timing probes wrapped around its methods at run time",
              flush=True)
        self.plane.stop()
        out = self.tmp / "probe.json"
        self.start_plane([sys.executable, __file__, "--role", "probed-dataplane"],  # one process: one probe set
                         {"BENCH_PROBE_OUT": str(out), "SMARTGRID_EVENTING_WORKERS": "1"})
        lines = ["\ndata plane timing probes, ms (the probes cost CPU and inflate every figure below: read them for "
                 "where the time goes, and take absolute figures from [3] and [4])"]
        for label, run_pass in (("throughput, closed loop", lambda: self.throughput_pass("probe-tp-")),
                                (f"latency, {self.args.rate:g}/s open loop", lambda: self.latency_pass("probe-lat-"))):
            self.probe_dump(out)  # drops what the previous pass left
            result = run_pass()
            probes = self.probe_dump(out)
            if "offered" in result:
                e2e = result["e2e_ms"]
                outcome = f"{result['offered']:,.0f} events/s offered, end to end p50 {e2e['p50']:.1f} p99 {e2e['p99']:.1f} ms"
            else:
                outcome = f"{result['e2e_rate']:,.0f} events/s end to end"
            plane = result["meter"].used("data plane")
            outcome += (f"; data plane CPU {1000 * plane['total'] / max(1, result['check']['distinct']):.3f} ms/event, "
                        f"main thread {100 * plane['main'] / result['meter'].seconds:.0f}% busy + "
                        f"{100 * plane['main_wait'] / result['meter'].seconds:.0f}% waiting for a CPU")
            lines.append(f"  {label} ({outcome}):")
            lines.append(f"    {'time since the load generator sent the event':<52} {'p50':>8} {'p90':>8} {'p99':>8}")
            for stage in STAGES:
                p = probes.get(stage, {})
                lines.append(f"    {stage:<52} {p.get('p50', float('nan')):8.1f} {p.get('p90', float('nan')):8.1f} "
                             f"{p.get('p99', float('nan')):8.1f}")
            for name, p in probes.items():
                if name not in STAGES:
                    lines.append(f"    {name:<52} {p.get('p50', 0):8.1f} {p.get('p90', 0):8.1f} {p.get('p99', 0):8.1f}"
                                 f"  mean {p['mean']:.1f} max {p['max']:.1f} n={p['n']}")
        return lines

    def probe_dump(self, out: Path) -> dict:
        assert self.plane is not None
        out.unlink(missing_ok=True)
        _signal(self.plane.pid, signal.SIGUSR1, group=False)
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return orjson.loads(out.read_bytes()) if out.exists() else {}

    # summary -----------------------------------------------------------------------------------

    def summary(self, raw: dict, pipe: dict, raw_lat: dict, calib: dict, tp: dict, lat: dict) -> None:
        cores = os.cpu_count() or 1
        e2e_rate = tp["e2e_rate"]
        p50 = lat["e2e_ms"].get("p50", float("nan"))
        p99 = lat["e2e_ms"].get("p99", float("nan"))
        raw_floor = min(raw["produce_rate"], raw["consume_rate"])
        kafka_lat = raw_lat[POLL_TIMEOUT_S]["e2e_ms"]
        dup = tp["check"]["duplicates"] + lat["check"]["duplicates"]
        missing = tp["check"]["missing"] + lat["check"]["missing"]
        rows = [
            ("raw Kafka produce (bulk)", f"{raw['produce_rate']:,.0f} rec/s", ""),
            ("raw Kafka consume (bulk)", f"{raw['consume_rate']:,.0f} rec/s", ""),
            (f"raw Kafka pipelined ({PIPELINE_WINDOW} in flight + consumer)", f"{pipe['ack_rate']:,.0f} rec/s",
             "Kafka's ceiling for the ingress pattern"),
            ("load generator -> subscriber directly", f"{calib['accept_rate']:,.0f} req/s", "harness ceiling"),
            ("ingress accepted (202)", f"{tp['accept_rate']:,.0f} ev/s", ""),
            ("delivered (first -> last)", f"{tp['deliver_rate']:,.0f} ev/s", ""),
            ("end to end (first send -> last delivery)", f"{e2e_rate:,.0f} ev/s",
             f">= {GOAL_THROUGHPUT:,.0f} ev/s sustained: {'met' if e2e_rate >= GOAL_THROUGHPUT else 'NOT met'}"),
            ("  ratio to raw bulk (slower of produce/consume)", f"{100 * e2e_rate / raw_floor:.1f} %", ""),
            ("  ratio to raw pipelined", f"{100 * e2e_rate / pipe['ack_rate']:.1f} %", ""),
            ("data plane CPU per event (main thread)",
             f"{tp['cpu_ms_per_event']:.3f} ({tp['main_ms_per_event']:.3f}) ms",
             f"<= {1000 / GOAL_THROUGHPUT:.2f} ms needed for {GOAL_THROUGHPUT:,.0f}/s on one core"),
            (f"p50 end to end at {lat['offered']:,.0f}/s", f"{p50:.1f} ms", ""),
            (f"p99 end to end at {lat['offered']:,.0f}/s", f"{p99:.1f} ms",
             f"< {GOAL_P99_MS:.0f} ms: {'met' if p99 < GOAL_P99_MS else 'NOT met'}"),
            (f"  raw Kafka produce->consume p50/p99 at {self.args.rate:g}/s",
             f"{kafka_lat.get('p50', float('nan')):.1f} / {kafka_lat.get('p99', float('nan')):.1f} ms",
             f"with the data plane's consume({POLL_BATCH}, {POLL_TIMEOUT_S * 1000:g} ms)"),
            ("exactly once (throughput + latency)", f"dup {dup}, missing {missing}", "0 / 0"),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"\nsummary ({cores} cores shared by Kafka, data plane, subscriber and load generator; "
              "data plane at log level warning)")
        print(f"  {'':<{width}}  {'measured':>18}  goal / note")
        for name, value, goal in rows:
            print(f"  {name:<{width}}  {value:>18}  {goal}")
        budget = {"data plane": tp["cpu_ms_per_event"], **self.harness_ms}
        if "tansu_ms_per_event" in tp:
            budget["Tansu"] = tp["tansu_ms_per_event"]
        others = sum(v for k, v in budget.items() if k != "data plane")
        print("  CPU budget per event on this machine: " + " + ".join(f"{k} {v:.3f}" for k, v in budget.items())
              + f" = {sum(budget.values()):.3f} ms -> at most {1000 * cores / sum(budget.values()):,.0f} events/s "
              f"on {cores} cores with everything local; even a free data plane would stop near "
              f"{1000 * cores / max(1e-9, others):,.0f}/s" + (
                  f"; {GOAL_THROUGHPUT:,.0f}/s needs the data plane at <= "
                  f"{1000 * cores / GOAL_THROUGHPUT - others:.3f} ms/event here."
                  if 1000 * cores / GOAL_THROUGHPUT > others else
                  f"; at {GOAL_THROUGHPUT:,.0f}/s the harness and Kafka alone would need "
                  f"{GOAL_THROUGHPUT * others / 1000:.1f} cores, the data plane another "
                  f"{GOAL_THROUGHPUT * tp['cpu_ms_per_event'] / 1000:.1f}."))
        print(f"  context: Knative's own data plane is quoted at ~2,500 requests/s per vCPU per hop; this one does "
              f"2 hops (ingress, delivery) at {e2e_rate:,.0f} events/s on {cores} shared cores, "
              f"{1000 / max(1e-9, tp['main_ms_per_event']):,.0f} events/s per core of its event loop's CPU.")


if __name__ == "__main__":
    sys.exit(main())
