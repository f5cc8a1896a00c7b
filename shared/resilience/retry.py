"""Retries of transient failures: exponential backoff with full jitter, built on tenacity."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.config import Settings

T = TypeVar("T")

# Knative retries these answers (and connection errors); any other status >= 300 is final.
RETRIED_STATUSES = frozenset({404, 408, 409, 429})
log = logging.getLogger("smartgrid.resilience")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried: attempt n waits up to
    min(max_delay_s, initial_delay_s * base ** (n - 1)), drawn uniformly (full jitter)."""

    attempts: int = 4
    initial_delay_s: float = 0.05
    base: float = 2.0
    max_delay_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy of SMARTGRID_RETRY_*."""
        return cls(
            attempts=settings.retry_attempts,
            initial_delay_s=settings.retry_initial_delay_s,
            base=settings.retry_base,
            max_delay_s=settings.retry_max_delay_s,
        )


def retryable_status(status: int) -> bool:
    """True for an HTTP answer worth retrying, by Knative's rule: 5xx, 404, 408, 409, 429."""
    return status >= 500 or status in RETRIED_STATUSES


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    is_transient: Callable[[BaseException], bool],
    *,
    policy: RetryPolicy = RetryPolicy(),
    what: str = "call",
) -> T:
    """Await `call()`, retrying the errors `is_transient` accepts as `policy` says; others raise at once."""

    async def attempt() -> T:
        # A coroutine function, so that tenacity awaits it (a lambda would be taken as sync).
        return await call()

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d of %d), retrying in %.3f s: %s", what, state.attempt_number,
                    policy.attempts, state.upcoming_sleep, error)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_random_exponential(multiplier=policy.initial_delay_s, max=policy.max_delay_s, exp_base=policy.base),
        retry=retry_if_exception(is_transient),
        before_sleep=log_retry,
        reraise=True,
    )
    return await retrying(attempt)
