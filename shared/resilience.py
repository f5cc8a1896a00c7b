"""Resilience patterns shared by every outbound call, built on tenacity."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

T = TypeVar("T")

# Knative retries these answers (and connection errors); any other status >= 300 is final.
RETRIED_STATUSES = frozenset({404, 408, 409, 429})
log = logging.getLogger("smartgrid.resilience")


def retryable_status(status: int) -> bool:
    """True for an HTTP answer worth retrying, by Knative's rule: 5xx, 404, 408, 409, 429."""
    return status >= 500 or status in RETRIED_STATUSES


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    is_transient: Callable[[BaseException], bool],
    *,
    attempts: int = 4,
    initial_delay: float = 0.05,
    max_delay: float = 2.0,
    what: str = "call",
) -> T:
    """Await `call()`, retrying transient errors with exponential backoff and full jitter."""

    async def attempt() -> T:
        # A coroutine function, so that tenacity awaits it (a lambda would be taken as sync).
        return await call()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=initial_delay, max=max_delay),
        retry=retry_if_exception(is_transient),
        before_sleep=lambda state: log.warning(
            "%s failed (attempt %d of %d), retrying: %s", what, state.attempt_number, attempts, state.outcome.exception()
        ),
        reraise=True,
    )
    return await retrying(attempt)
