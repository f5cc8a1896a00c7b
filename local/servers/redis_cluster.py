"""A private Redis Cluster: `redis-server --cluster-enabled yes` nodes on free ports, joined by `redis-cli --cluster`."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from local.servers.process import ManagedProcess, ServerStartError, free_port
from local.servers.redis import redis_binary

JOIN_TIMEOUT_S = 30.0


@contextmanager
def redis_cluster(state_dir: Path, nodes: int = 3) -> Iterator[str]:
    """Yield the URL of one node of a cluster of `nodes` masters (no replicas), all slots covered; stopped after."""
    cli = shutil.which("redis-cli", path=str(Path(redis_binary()).parent))
    if cli is None:
        raise ServerStartError("expected redis-cli beside redis-server (apt-get install redis-server), found none")
    with ExitStack() as stack:
        ports = []
        for index in range(nodes):
            port, bus_port = free_port(), free_port()
            data_dir = state_dir / "redis-cluster" / str(index)
            data_dir.mkdir(parents=True, exist_ok=True)
            node = ManagedProcess(
                f"redis-cluster-{index}",
                [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--cluster-port", str(bus_port),
                 "--cluster-enabled", "yes", "--cluster-config-file", str(data_dir / "nodes.conf"),
                 "--dir", str(data_dir), "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                state_dir / "logs" / f"redis-cluster-{index}.log",
            )
            node.start(port)
            stack.callback(node.stop)
            ports.append(port)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True)
        _wait_until_ok(cli, ports)
        yield f"redis://127.0.0.1:{ports[0]}/0"


def _wait_until_ok(cli: str, ports: list[int]) -> None:
    """Block until every node reports `cluster_state:ok` (the nodes agree on the slots)."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for port in ports:
        while b"cluster_state:ok" not in subprocess.run([cli, "-p", str(port), "cluster", "info"],
                                                        capture_output=True).stdout:
            if time.monotonic() > deadline:
                raise ServerStartError(f"redis cluster node 127.0.0.1:{port}: expected cluster_state:ok "
                                       f"within {JOIN_TIMEOUT_S:.0f} s, found it still joining")
            time.sleep(0.1)
