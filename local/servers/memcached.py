"""Memcached: `SMARTGRID_MEMCACHED_URL` when set, else a private `memcached` (Debian's package) on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.servers.process import ManagedProcess, ServerStartError, free_port

_SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin"
MEMORY_MB = 64


def memcached_binary() -> str:
    """The path of `memcached`; raises ServerStartError saying how to install it."""
    found = shutil.which("memcached") or shutil.which("memcached", path=_SEARCH_PATH)
    if found is None:
        raise ServerStartError(
            "expected memcached on PATH (apt-get install memcached) or SMARTGRID_MEMCACHED_URL, found neither"
        )
    return found


@contextmanager
def memcached_server(url: str | None, state_dir: Path) -> Iterator[str]:
    """Yield a memcached URL: `url` if given, else that of a memcached started here (64 MB, TCP only)."""
    if url:
        yield url
        return
    port = free_port()
    server = ManagedProcess(
        "memcached",
        [memcached_binary(), "--listen=127.0.0.1", f"--port={port}", "--udp-port=0",
         f"--memory-limit={MEMORY_MB}", "--user=nobody"],
        state_dir / "logs" / "memcached.log",
    )
    server.start(port)
    try:
        yield f"memcached://127.0.0.1:{port}"
    finally:
        server.stop()
