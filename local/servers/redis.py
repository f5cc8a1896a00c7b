"""Redis: `SMARTGRID_REDIS_URL` when set, else a private `redis-server` (Debian's package) on a free port.

The private server keeps its data in `<state dir>/redis` with append-only persistence (AOF, fsync every
second, no RDB snapshots): rule state, the alert outbox, notify's sent ledger and escalations survive a
restart of Redis or of the platform; a crash of the Redis process loses at most the last second of writes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.servers.process import ManagedProcess, ServerStartError, free_port

_SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin"


def redis_binary() -> str:
    """The path of `redis-server`; raises ServerStartError saying how to install it."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path=_SEARCH_PATH)
    if found is None:
        raise ServerStartError(
            "expected redis-server on PATH (apt-get install redis-server) or SMARTGRID_REDIS_URL, found neither"
        )
    return found


@contextmanager
def redis_server(url: str | None, state_dir: Path) -> Iterator[str]:
    """Yield a Redis URL: `url` if given, else that of a persistent redis-server started here (see above)."""
    if url:
        yield url
        return
    port = free_port()
    data_dir = state_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ManagedProcess(
        "redis",
        [
            redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no",
            "--daemonize", "no",
        ],
        state_dir / "logs" / "redis.log",
    )
    server.start(port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()
