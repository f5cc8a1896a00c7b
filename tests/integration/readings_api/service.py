"""The readings function under functions-framework, on this session's `smartgrid` database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from local.functions import Function
from local.servers.process import free_port
from tests.identity import Identity

SOURCE = Path(__file__).resolve().parents[3] / "functions" / "readings" / "main.py"


@asynccontextmanager
async def readings_service(smartgrid_dsn: str, identity: Identity, log_path: Path) -> AsyncIterator[str]:
    """The URL of the readings API (`http://127.0.0.1:N/api/v1/readings`) of a running readings function."""
    port = free_port()
    process = Function("readings", SOURCE).process(port, "http://127.0.0.1:9/unused", {
        "SMARTGRID_DSN_SMARTGRID": smartgrid_dsn, **identity.env}, log_path)
    await asyncio.to_thread(process.start, port)
    try:
        yield f"http://127.0.0.1:{port}/api/v1/readings"
    finally:
        await asyncio.to_thread(process.stop)
