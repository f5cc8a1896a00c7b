"""Downstreams: one circuit breaker and one retry policy per service a function calls."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.config import Settings
from shared.resilience.breaker import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    Clock,
)
from shared.resilience.retry import RetryPolicy, retry_transient

T = TypeVar("T")
IsTransient = Callable[[BaseException], bool]


class Downstream:
    """Calls to one downstream (e.g. `postgres:smartgrid`, `broker`): retried inside, a breaker around.

    Only transient errors are retried and count as breaker failures: a permanent one (a 400, bad
    data) is the downstream answering, so it never opens the breaker. CircuitOpen is never retried.
    """

    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy,
        breaker: BreakerPolicy,
        is_transient: IsTransient,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self._retry = retry
        self._is_transient = is_transient
        self._breaker = CircuitBreaker(name, breaker, is_failure=is_transient, clock=clock)

    @property
    def state(self) -> CircuitState:
        """The state of this downstream's breaker."""
        return self._breaker.state

    async def call(self, fn: Callable[[], Awaitable[T]], *, what: str = "call") -> T:
        """Await `fn()` through the breaker, retrying transient errors; raises CircuitOpen when open."""
        return await self._breaker.call(
            lambda: retry_transient(fn, self._retried, policy=self._retry, what=f"{what} ({self.name})")
        )

    def _retried(self, error: BaseException) -> bool:
        return not isinstance(error, CircuitOpen) and self._is_transient(error)


class Downstreams:
    """The downstreams of one process, each made on first use with the same policies."""

    def __init__(self, retry: RetryPolicy, breaker: BreakerPolicy, *, clock: Clock = time.monotonic) -> None:
        self._retry = retry
        self._breaker = breaker
        self._clock = clock
        self._by_name: dict[str, Downstream] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Downstreams:
        """The downstreams of SMARTGRID_RETRY_* and SMARTGRID_BREAKER_*."""
        return cls(RetryPolicy.from_settings(settings), BreakerPolicy.from_settings(settings))

    def get(self, name: str, is_transient: IsTransient) -> Downstream:
        """The downstream `name`, made with `is_transient` on first use (later calls keep the first rule)."""
        if name not in self._by_name:
            self._by_name[name] = Downstream(
                name, retry=self._retry, breaker=self._breaker, is_transient=is_transient, clock=self._clock
            )
        return self._by_name[name]
