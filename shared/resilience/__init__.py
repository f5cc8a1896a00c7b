"""Resilience patterns shared by every outbound call: retries, circuit breakers, fallbacks, downstreams."""

from shared.resilience.breaker import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
)
from shared.resilience.downstream import Downstream, Downstreams
from shared.resilience.fallback import LastGood, default, with_fallback
from shared.resilience.retry import (
    RETRIED_STATUSES,
    RetryPolicy,
    retry_transient,
    retryable_status,
)

__all__ = [
    "RETRIED_STATUSES",
    "BreakerPolicy",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "Downstream",
    "Downstreams",
    "LastGood",
    "RetryPolicy",
    "default",
    "retry_transient",
    "retryable_status",
    "with_fallback",
]
