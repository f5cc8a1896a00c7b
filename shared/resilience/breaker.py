"""Circuit breakers: stop calling a downstream that keeps failing, probe it again after a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from shared.config import Settings
from shared.resilience.metrics import BREAKER_STATE, BREAKER_TRANSITIONS, OUTBOUND_CALLS

T = TypeVar("T")
Clock = Callable[[], float]
log = logging.getLogger("smartgrid.resilience")


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens (consecutive failures), how long it stays open, what closes it again."""

    failure_threshold: int = 5
    recovery_timeout_s: float = 60.0
    success_threshold: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerPolicy:
        """The policy of SMARTGRID_BREAKER_*."""
        return cls(
            failure_threshold=settings.breaker_failures,
            recovery_timeout_s=settings.breaker_recovery_s,
            success_threshold=settings.breaker_successes,
        )


class CircuitState(Enum):
    """The states of a breaker; the values are those of the state gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpen(RuntimeError):
    """Raised instead of calling a downstream whose breaker is open (or half-open with its probe under way)."""

    def __init__(self, downstream: str, retry_in_s: float) -> None:
        super().__init__(f"{downstream} unavailable: expected a closed circuit breaker, found it open; "
                         f"next probe in {retry_in_s:.1f} s")
        self.downstream = downstream
        self.retry_in_s = retry_in_s


def _every_error(error: BaseException) -> bool:
    return True


class CircuitBreaker:
    """The breaker of one downstream: CLOSED, OPEN after consecutive failures, HALF_OPEN to probe."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy = BreakerPolicy(),
        *,
        is_failure: Callable[[BaseException], bool] = _every_error,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self._policy = policy
        self._is_failure = is_failure
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._probing = False
        BREAKER_STATE.labels(name).set(CircuitState.CLOSED.value)

    @property
    def state(self) -> CircuitState:
        """The current state; an open breaker turns half-open once its recovery timeout has passed."""
        if self._state is CircuitState.OPEN and self._retry_in() <= 0:
            self._enter(CircuitState.HALF_OPEN)
        return self._state

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` unless the breaker is open; raises CircuitOpen without calling when it is."""
        admitted = self._admit()
        try:
            result = await fn()
        except Exception as error:
            self._record(admitted, failed=self._is_failure(error))
            raise
        else:
            self._record(admitted, failed=False)
            return result
        finally:
            if admitted is CircuitState.HALF_OPEN:
                self._probing = False

    def _admit(self) -> CircuitState:
        state = self.state
        if state is CircuitState.OPEN or (state is CircuitState.HALF_OPEN and self._probing):
            OUTBOUND_CALLS.labels(self.name, "rejected").inc()
            raise CircuitOpen(self.name, max(self._retry_in(), 0.0))
        if state is CircuitState.HALF_OPEN:
            self._probing = True
        return state

    def _record(self, admitted: CircuitState, *, failed: bool) -> None:
        """Count one outcome; a call that began in another state than the current one moves nothing."""
        OUTBOUND_CALLS.labels(self.name, "failure" if failed else "success").inc()
        if self._state is not admitted:
            return
        if failed:
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self._policy.failure_threshold:
                self._enter(CircuitState.OPEN)
        elif self._state is CircuitState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self._policy.success_threshold:
                self._enter(CircuitState.CLOSED)
        else:
            self._failures = 0

    def _retry_in(self) -> float:
        return self._opened_at + self._policy.recovery_timeout_s - self._clock()

    def _enter(self, state: CircuitState) -> None:
        previous, failures = self._state, self._failures
        self._state, self._failures, self._successes = state, 0, 0
        if state is CircuitState.OPEN:
            self._opened_at = self._clock()
            log.warning("circuit breaker of %s: %s -> open (%d consecutive failures); next probe in %.1f s",
                        self.name, previous.name.lower(), failures, self._policy.recovery_timeout_s)
        else:
            log.info("circuit breaker of %s: %s -> %s", self.name, previous.name.lower(), state.name.lower())
        BREAKER_STATE.labels(self.name).set(state.value)
        BREAKER_TRANSITIONS.labels(self.name, state.name.lower()).inc()
