"""Orderly shutdown of a function process: work that must finish before the server stops on SIGTERM.

Knative (and `smartgrid up`'s activator) stop a function with SIGTERM, then SIGKILL after a grace
period (terminationGracePeriodSeconds; the activator's 5 s). functions-framework builds its Starlette
app without a lifespan, so a function cannot hook the ASGI lifespan shutdown; and uvicorn, once its
graceful shutdown is over, re-raises SIGTERM with the default action, which ends the process before
anything left on the event loop runs again. `BeforeSigterm` therefore takes SIGTERM first: it awaits
the cleanup, then hands the signal to the handler it replaced (uvicorn's), which stops accepting,
lets the requests in flight finish, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("smartgrid.shutdown")


class BeforeSigterm:
    """Runs a cleanup on SIGTERM before the signal reaches the server."""

    def __init__(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        self._cleanup = cleanup
        self._armed = False
        self._stopping: asyncio.Task[None] | None = None

    def arm(self) -> None:
        """Take SIGTERM over from the running server; call inside its loop, in the main thread (e.g. on
        every request: only the first call acts)."""
        if self._armed:
            return
        self._armed = True
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._received, loop, signal.getsignal(signal.SIGTERM))

    def _received(self, loop: asyncio.AbstractEventLoop, previous: Any) -> None:
        """The first SIGTERM starts the cleanup; others wait for it, then go straight to the server."""
        if self._stopping is None:
            self._stopping = loop.create_task(self._stop(loop, previous))
        elif self._stopping.done():
            _forward(loop, previous)

    async def _stop(self, loop: asyncio.AbstractEventLoop, previous: Any) -> None:
        try:
            await self._cleanup()
        except Exception:
            log.exception("cleanup before shutdown failed")
        finally:
            _forward(loop, previous)


def _forward(loop: asyncio.AbstractEventLoop, previous: Any) -> None:
    """Deliver SIGTERM to the handler that was in place before ours."""
    if callable(previous):
        previous(signal.SIGTERM, None)
    elif previous != signal.SIG_IGN:
        loop.remove_signal_handler(signal.SIGTERM)  # back to the default action: end the process
        signal.raise_signal(signal.SIGTERM)
