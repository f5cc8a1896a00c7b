"""Webhooks: `SMARTGRID_WEBHOOK_URL` when set, else a local receiver that checks each signature and logs the request.

The receiver answers 200 to a request whose `X-Smartgrid-Signature` is valid for the shared secret
and 401 otherwise, and appends every request, valid or not, as one JSON line to
`<state_dir>/webhooks.jsonl`. It can be stopped and started again on the same port, as tests do
to play a receiver that is down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from local import aio
from shared.notify.signing import SIGNATURE_HEADER, InvalidSignature, verify

WEBHOOKS_FILE = "webhooks.jsonl"


class WebhookReceiver:
    """A local webhook endpoint that verifies signatures (401 when invalid) and records every request."""

    def __init__(self, secret: str, state_dir: Path, *, port: int = 0) -> None:
        self.secret = secret
        self.state_dir = state_dir
        self.log_path = state_dir / WEBHOOKS_FILE
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The URL notifications are posted to (known once started)."""
        return f"http://127.0.0.1:{self.port}/notifications"

    @property
    def running(self) -> bool:
        """True while the receiver listens."""
        return self._runner is not None

    async def start(self) -> str:
        """Listen (on the same port as before, after a stop); return the URL."""
        if self._runner is None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self._receive)
            self._runner, base = await aio.serve(app, "127.0.0.1", self.port, shutdown_timeout=1.0)
            self.port = int(base.rsplit(":", 1)[1])
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return self.url

    async def stop(self) -> None:
        """Stop listening: connections are refused until `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, body, request.headers.get(SIGNATURE_HEADER))
            error = None
        except InvalidSignature as invalid:
            error = str(invalid)
        record = {
            "received_at": datetime.now(UTC).isoformat(),
            "path": request.path,
            "valid": error is None,
            "error": error,
            "headers": {name: value for name, value in request.headers.items() if name.lower().startswith("x-smartgrid")},
            "body": _decoded(body),
        }
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        if error is not None:
            return web.json_response({"error": "invalid signature", "message": error}, status=401)
        return web.json_response({"received": True})


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


@asynccontextmanager
async def webhook_receiver(url: str | None, secret: str, state_dir: Path) -> AsyncIterator[str]:
    """Yield a webhook URL: `url` if given, else that of a local receiver started here."""
    if url:
        yield url
        return
    receiver = WebhookReceiver(secret, state_dir)
    try:
        yield await receiver.start()
    finally:
        await receiver.stop()


def read_webhooks(state_dir: Path) -> list[dict[str, Any]]:
    """Every request the local receiver recorded in <state_dir>/webhooks.jsonl, oldest first."""
    path = state_dir / WEBHOOKS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
