"""`smartgrid eventing serve`: the data plane in one process, or in n worker processes.

With n > 1, each worker is a forked process running a DataPlane with one role. Worker 0 is
the ingress: the only process that writes to the broker topics. (Several producers appending
to one partition at once make Tansu's memory storage skip records at a consumer's tail, so
the workers do not each run an ingress.) Workers 1..n-1 are dispatchers: each consumes every
(n-1)-th partition of each topic (explicit assignment: it commits only its own partitions,
after delivery, so at-least-once holds) and POSTs the replies of subscribers to the ingress;
the first runs the PingSources. `ready <url>` is printed once every worker is in place.
SIGINT/SIGTERM stop every worker (drain, commit); a worker whose supervisor dies, even by
SIGKILL, is SIGKILLed.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from local import aio
from local.eventing.dataplane import DataPlane, DataPlaneOptions
from local.eventing.manifests import EventingConfig

log = logging.getLogger("smartgrid.eventing.workers")

PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


def serve(config: EventingConfig, options: DataPlaneOptions, workers: int) -> int:
    """Run the data plane in `workers` processes until SIGINT or SIGTERM; 0 on a clean stop."""
    if workers <= 1:
        aio.run(_serve(DataPlane(config, options), _print_ready))
        return 0
    return Supervisor(config, options, workers).run()


async def _serve(plane: DataPlane, ready: Callable[[str], None]) -> None:
    url = await plane.start()
    ready(url)
    try:
        await aio.until_stopped()
    finally:
        await plane.stop()


def _print_ready(url: str) -> None:
    print(f"ready {url}", flush=True)


class Supervisor:
    """Forks the workers, announces them ready together, and stops them together."""

    def __init__(self, config: EventingConfig, options: DataPlaneOptions, count: int) -> None:
        self._config = config
        self._options = options
        self._count = count
        self._processes: list[BaseProcess] = []
        self._stopping = False

    def run(self) -> int:
        """Start every worker, print `ready <url>`, and wait for a signal or a worker's death."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        try:
            url = self._start_all()
            if url is None:
                return 0 if self._stopping else 1
            _print_ready(url)
            while not self._stopping:
                dead = [p for p in self._processes if not p.is_alive()]
                if dead:
                    log.error("data plane worker %s exited with %s: stopping the others", dead[0].name,
                              dead[0].exitcode)
                    return 1
                wait([p.sentinel for p in self._processes], timeout=0.2)
            return 0
        finally:
            self._stop_all()

    def _start_all(self) -> str | None:
        """Fork the ingress and the dispatchers; the ingress URL once all are ready, None if one died."""
        sock = aio.bound_socket(self._options.host, self._options.port)
        url = f"http://{self._options.host}:{sock.getsockname()[1]}"
        dispatchers = self._count - 1
        roles = [replace(self._options, sock=sock, share=None)]
        roles += [replace(self._options, serve_ingress=False, share=(k, dispatchers), reply_url=url)
                  for k in range(dispatchers)]
        context = multiprocessing.get_context("fork")
        waiting: set[Connection] = set()
        for number, options in enumerate(roles):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(self._config, options, writer, os.getpid(), sock),
                                      name=f"eventing-{'ingress' if number == 0 else f'dispatcher-{number}'}")
            process.start()
            writer.close()
            self._processes.append(process)
            waiting.add(reader)
        sock.close()
        while waiting and not self._stopping:
            ready = wait([*waiting, *(p.sentinel for p in self._processes)], timeout=READY_TIMEOUT_S)
            if not ready or any(not p.is_alive() for p in self._processes):
                log.error("a data plane worker failed to start")
                return None
            for reader in waiting.intersection(ready):
                reader.recv()
                waiting.discard(reader)
        return None if self._stopping else url

    def _stop_all(self) -> None:
        """Stop the dispatchers first (their last replies still reach the ingress), then the ingress."""
        for group in (self._processes[1:], self._processes[:1]):
            for process in group:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)
            for process in group:
                process.join(STOP_TIMEOUT_S)
                if process.is_alive():
                    log.error("data plane worker %s did not stop in %.0f s: killed", process.name, STOP_TIMEOUT_S)
                    process.kill()
                    process.join()

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self._stopping = True


def _worker(config: EventingConfig, options: DataPlaneOptions, ready: Connection, supervisor: int,
            ingress_socket: socket.socket) -> None:
    """One worker process: dies with the supervisor, serves until SIGTERM."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # not the supervisor's handler: until serving, a signal ends it
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # the supervisor died before the line above
        os._exit(1)
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the supervisor only, which stops the workers once
    if options.sock is None:
        ingress_socket.close()  # or the port would stay open while the ingress stops
    aio.run(_serve(DataPlane(config, options), ready.send))
