"""The Prometheus metrics of outbound calls and circuit breakers (the process's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BREAKER_STATE = Gauge(
    "smartgrid_circuit_breaker_state",
    "State of a downstream's circuit breaker: 0 closed, 1 open, 2 half-open.",
    ["downstream"],
)
BREAKER_TRANSITIONS = Counter(
    "smartgrid_circuit_breaker_transitions_total",
    "Circuit breaker transitions, by downstream and the state entered.",
    ["downstream", "state"],
)
OUTBOUND_CALLS = Counter(
    "smartgrid_outbound_calls_total",
    "Calls to a downstream through its circuit breaker, by outcome: success, failure or rejected.",
    ["downstream", "outcome"],
)
