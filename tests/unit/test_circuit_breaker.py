"""The circuit breaker's state machine, on a fake clock, and the metrics it exports."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from prometheus_client import REGISTRY

from shared.config import Settings
from shared.resilience import BreakerPolicy, CircuitBreaker, CircuitOpen, CircuitState

POLICY = BreakerPolicy(failure_threshold=3, recovery_timeout_s=10.0, success_threshold=2)
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Transient(Exception):
    """A downstream failure that counts (a timeout, a 503)."""


class Permanent(Exception):
    """A downstream answer that does not count (a 400, bad data)."""


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(f"test-{uuid.uuid4().hex[:8]}", POLICY,
                          is_failure=lambda error: isinstance(error, Transient), clock=clock)


async def opened(clock: FakeClock) -> CircuitBreaker:
    """A breaker just opened by consecutive failures."""
    cb = breaker(clock)
    for _ in range(POLICY.failure_threshold):
        await step(cb, clock, "fail")
    return cb


async def step(cb: CircuitBreaker, clock: FakeClock, action: str) -> str:
    """Run one action: `ok`, `fail` (transient), `bad` (permanent) or `wait` (the recovery timeout)."""
    if action == "wait":
        clock.now += POLICY.recovery_timeout_s
        return "-"

    async def downstream() -> str:
        if action == "fail":
            raise Transient("503")
        if action == "bad":
            raise Permanent("400")
        return "answer"

    try:
        await cb.call(downstream)
    except CircuitOpen:
        return "rejected"
    except (Transient, Permanent):
        return "raised"
    return "ok"


# Each step: (action, what the caller sees, the state afterwards).
SCENARIOS = {
    "stays closed below the threshold": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("ok", "ok", CLOSED),
    ],
    "opens at the threshold": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
    ],
    "a success resets the count": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("ok", "ok", CLOSED),
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
    ],
    "rejects while open, without calling": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
        ("ok", "rejected", OPEN), ("fail", "rejected", OPEN),
    ],
    "permanent errors never open it": [
        ("bad", "raised", CLOSED), ("bad", "raised", CLOSED), ("bad", "raised", CLOSED),
        ("bad", "raised", CLOSED), ("fail", "raised", CLOSED), ("bad", "raised", CLOSED),
    ],
    "half-open after the recovery timeout": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
        ("wait", "-", HALF_OPEN),
    ],
    "closes after the success threshold": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
        ("wait", "-", HALF_OPEN), ("ok", "ok", HALF_OPEN), ("ok", "ok", CLOSED),
    ],
    "a failed probe reopens it and restarts the timer": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
        ("wait", "-", HALF_OPEN), ("ok", "ok", HALF_OPEN), ("fail", "raised", OPEN),
        ("ok", "rejected", OPEN), ("wait", "-", HALF_OPEN), ("ok", "ok", HALF_OPEN), ("ok", "ok", CLOSED),
    ],
    "a permanent error of a probe is an answer": [
        ("fail", "raised", CLOSED), ("fail", "raised", CLOSED), ("fail", "raised", OPEN),
        ("wait", "-", HALF_OPEN), ("bad", "raised", HALF_OPEN), ("ok", "ok", CLOSED),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_state_machine(steps: list[tuple[str, str, CircuitState]]) -> None:
    clock = FakeClock()
    cb = breaker(clock)
    seen = []
    for action, _, _ in steps:
        seen.append((action, await step(cb, clock, action), cb.state))
    assert seen == steps


async def test_open_breaker_does_not_call_and_names_the_downstream_and_the_wait() -> None:
    clock = FakeClock()
    cb = await opened(clock)
    clock.now += 4.0
    calls = []

    async def downstream() -> None:
        calls.append(1)

    with pytest.raises(CircuitOpen) as raised:
        await cb.call(downstream)
    assert calls == []
    assert raised.value.downstream == cb.name and raised.value.retry_in_s == pytest.approx(6.0)
    assert cb.name in str(raised.value) and "6.0 s" in str(raised.value)
    assert isinstance(raised.value, RuntimeError)


async def test_half_open_lets_one_probe_through_at_a_time() -> None:
    clock = FakeClock()
    cb = await opened(clock)
    clock.now += POLICY.recovery_timeout_s
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "answer"

    probe = asyncio.create_task(cb.call(slow))
    await asyncio.sleep(0)
    assert await step(cb, clock, "ok") == "rejected"
    release.set()
    assert await probe == "answer"
    assert cb.state is HALF_OPEN
    assert await step(cb, clock, "ok") == "ok"
    assert cb.state is CLOSED


async def test_a_cancelled_probe_frees_the_probe_slot() -> None:
    clock = FakeClock()
    cb = await opened(clock)
    clock.now += POLICY.recovery_timeout_s
    probe = asyncio.create_task(cb.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await step(cb, clock, "ok") == "ok"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_follow_the_transitions_and_outcomes() -> None:
    clock = FakeClock()
    cb = breaker(clock)
    name = cb.name
    assert sample("smartgrid_circuit_breaker_state", downstream=name) == 0
    for action in ["ok", "fail", "fail", "fail", "ok"]:
        await step(cb, clock, action)
    assert sample("smartgrid_circuit_breaker_state", downstream=name) == 1
    assert sample("smartgrid_outbound_calls_total", downstream=name, outcome="success") == 1
    assert sample("smartgrid_outbound_calls_total", downstream=name, outcome="failure") == 3
    assert sample("smartgrid_outbound_calls_total", downstream=name, outcome="rejected") == 1
    assert sample("smartgrid_circuit_breaker_transitions_total", downstream=name, state="open") == 1
    clock.now += POLICY.recovery_timeout_s
    assert cb.state is HALF_OPEN
    assert sample("smartgrid_circuit_breaker_state", downstream=name) == 2
    for action in ["ok", "ok"]:
        await step(cb, clock, action)
    assert sample("smartgrid_circuit_breaker_state", downstream=name) == 0
    for state in ("half_open", "closed"):
        assert sample("smartgrid_circuit_breaker_transitions_total", downstream=name, state=state) == 1


async def test_transitions_are_logged_with_the_downstream(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    cb = breaker(clock)
    with caplog.at_level(logging.INFO, logger="smartgrid.resilience"):
        for action in ["fail", "fail", "fail", "wait", "ok", "ok"]:
            await step(cb, clock, action)
    transitions = [(r.levelno, r.getMessage()) for r in caplog.records if "circuit breaker" in r.getMessage()]
    assert [level for level, _ in transitions] == [logging.WARNING, logging.INFO, logging.INFO]
    assert all(cb.name in message for _, message in transitions)
    assert "closed -> open" in transitions[0][1] and "open -> half_open" in transitions[1][1]


def test_policy_from_settings() -> None:
    settings = Settings(breaker_failures=7, breaker_recovery_s=1.5, breaker_successes=3)
    assert BreakerPolicy.from_settings(settings) == BreakerPolicy(7, 1.5, 3)
    assert BreakerPolicy.from_settings(Settings()) == BreakerPolicy()
