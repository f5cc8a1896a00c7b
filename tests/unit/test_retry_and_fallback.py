"""Retries of transient errors (exponential backoff, full jitter) and fallbacks."""

from __future__ import annotations

import logging
import re

import pytest

from shared.config import Settings
from shared.resilience import (
    LastGood,
    RetryPolicy,
    default,
    retry_transient,
    retryable_status,
    with_fallback,
)

FAST = RetryPolicy(attempts=4, initial_delay_s=0.001, base=2.0, max_delay_s=0.002)


class Transient(Exception):
    """A failure worth retrying."""


class Permanent(Exception):
    """A failure retrying cannot mend."""


def is_transient(error: BaseException) -> bool:
    return isinstance(error, Transient)


class Flaky:
    """A call that raises the given errors in turn, then answers `done`."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def test_transient_errors_are_retried_until_the_call_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    call = Flaky(Transient("timeout"), Transient("503"))
    with caplog.at_level(logging.WARNING, logger="smartgrid.resilience"):
        assert await retry_transient(call, is_transient, policy=FAST, what="fetch tariff") == "done"
    assert call.calls == 3
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all("fetch tariff failed" in message for message in messages)
    assert "attempt 1 of 4" in messages[0] and "503" in messages[1]


async def test_permanent_errors_are_raised_at_once() -> None:
    call = Flaky(Permanent("400"))
    with pytest.raises(Permanent):
        await retry_transient(call, is_transient, policy=FAST)
    assert call.calls == 1


async def test_the_last_transient_error_is_raised_after_the_last_attempt() -> None:
    call = Flaky(*(Transient(f"try {n}") for n in range(1, 10)))
    with pytest.raises(Transient, match="try 4"):
        await retry_transient(call, is_transient, policy=FAST)
    assert call.calls == FAST.attempts


async def test_backoff_is_jittered_below_an_exponential_bound(caplog: pytest.LogCaptureFixture) -> None:
    policy = RetryPolicy(attempts=4, initial_delay_s=0.0005, base=10.0, max_delay_s=0.02)
    bounds = [min(policy.max_delay_s, policy.initial_delay_s * policy.base ** n) for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="smartgrid.resilience"):
        for _ in range(20):
            with pytest.raises(Transient):
                await retry_transient(Flaky(*[Transient("down")] * 4), is_transient, policy=policy)
    delays = [float(re.search(r"retrying in ([\d.]+) s", r.getMessage()).group(1)) for r in caplog.records]
    per_retry = [delays[n::3] for n in range(3)]
    for bound, observed in zip(bounds, per_retry, strict=True):
        assert len(observed) == 20 and max(observed) <= bound + 0.0005
    # With base 2 the third wait would stay below 0.002 s; base 10 lets it reach 0.02 s.
    assert max(per_retry[2]) > policy.initial_delay_s * 2.0 ** 2


def test_policy_from_settings() -> None:
    settings = Settings(retry_attempts=6, retry_initial_delay_s=0.1, retry_base=3.0, retry_max_delay_s=5.0)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(6, 0.1, 3.0, 5.0)
    assert RetryPolicy.from_settings(Settings()) == RetryPolicy()


@pytest.mark.parametrize(("status", "retried"), [
    (500, True), (503, True), (404, True), (408, True), (409, True), (429, True),
    (400, False), (401, False), (403, False), (413, False), (422, False),
])
def test_retryable_status_follows_knative(status: int, retried: bool) -> None:
    assert retryable_status(status) is retried


async def test_with_fallback_answers_the_call_when_it_succeeds() -> None:
    assert await with_fallback(Flaky(), default("stale")) == "done"


async def test_with_fallback_answers_the_fallback_of_the_error() -> None:
    answer = await with_fallback(Flaky(Transient("down")), lambda error: f"fallback after {error}")
    assert answer == "fallback after down"


async def test_with_fallback_awaits_an_async_fallback() -> None:
    async def fallback(error: Exception) -> str:
        return "from cache"

    assert await with_fallback(Flaky(Transient("down")), fallback) == "from cache"


async def test_with_fallback_lets_other_errors_through() -> None:
    with pytest.raises(Permanent):
        await with_fallback(Flaky(Permanent("400")), default("stale"), on=(Transient,))


async def test_last_good_answers_the_last_remembered_value() -> None:
    tariffs: LastGood[str, float] = LastGood()
    assert tariffs.remember("F-12", 0.31) == 0.31
    tariffs.remember("F-12", 0.32)
    assert await with_fallback(Flaky(Transient("down")), tariffs.fallback_for("F-12")) == 0.32


async def test_last_good_reraises_the_original_error_when_nothing_was_remembered() -> None:
    tariffs: LastGood[str, float] = LastGood()
    tariffs.remember("F-12", 0.31)
    error = Transient("down")
    with pytest.raises(Transient) as raised:
        await with_fallback(Flaky(error), tariffs.fallback_for("F-13"))
    assert raised.value is error
