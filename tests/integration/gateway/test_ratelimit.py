"""The gateway's token buckets on a real Redis: bursts, refill, and one bucket shared by many processes."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from local.gateway.ratelimit import (
    DEFAULT_CONFIG_FILE,
    RateLimitConfig,
    RateLimiter,
    headers,
    load_config,
)
from local.servers.process import free_port
from shared.stores.redis import connect

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
DEVICE = [("caller_kind", "device"), ("route", "ingest"), ("caller", "meter-1")]


def config(unit: str, requests_per_unit: int) -> str:
    """A configuration limiting each device on each route to `requests_per_unit` per `unit`."""
    return f"""
domain: smartgrid
descriptors:
  - key: caller_kind
    value: device
    descriptors:
      - key: route
        descriptors:
          - key: caller
            rate_limit: {{unit: {unit}, requests_per_unit: {requests_per_unit}}}
"""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A Redis client of this test."""
    redis = connect(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own (SMARTGRID_REDIS_PREFIX); its keys are deleted after the test."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def limiter(client: aioredis.Redis, prefix: str) -> Callable[[RateLimitConfig], RateLimiter]:
    """Makes limiters on this test's client and prefix (with a patient timeout: a loaded machine is slow)."""
    return lambda limits: RateLimiter(client, limits, prefix=prefix, timeout_s=5.0)


async def test_a_burst_over_the_limit_is_refused_with_when_to_retry(limiter, client, prefix) -> None:
    limits = limiter(load_config(config("minute", 5)))
    allowed = [await limits.check(DEVICE) for _ in range(5)]
    refused = await limits.check(DEVICE)
    assert [(d.allowed, d.limit, d.remaining) for d in allowed] == [(True, 5, n) for n in (4, 3, 2, 1, 0)]
    assert refused is not None and not refused.allowed and refused.remaining == 0
    assert 11.0 < refused.retry_after_s <= 12.0  # a token every 60 s / 5
    assert 59.0 < refused.reset_s <= 60.0  # all five back after a minute
    assert headers(refused) == {"RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "60",
                                "Retry-After": "12"}
    [key] = await client.keys(f"{prefix}*")
    assert key.decode() == f"{prefix}ratelimit:smartgrid:caller_kind_device.route.caller:device:ingest:meter-1"
    assert 58_000 < await client.pttl(key) <= 60_001  # expires once it would be full again


async def test_the_bucket_refills_continuously(limiter) -> None:
    limits = limiter(load_config(config("second", 2)))
    assert [(await limits.check(DEVICE)).allowed for _ in range(3)] == [True, True, False]
    refused = await limits.check(DEVICE)
    assert 0.3 < refused.retry_after_s <= 0.5
    await asyncio.sleep(refused.retry_after_s + 0.05)
    assert (await limits.check(DEVICE)).allowed
    assert not (await limits.check(DEVICE)).allowed
    await asyncio.sleep(1.05)  # empty to full
    assert [(await limits.check(DEVICE)).allowed for _ in range(3)] == [True, True, False]


async def test_each_caller_and_route_has_its_own_bucket(limiter) -> None:
    limits = limiter(load_config(config("minute", 1)))
    other_caller = [*DEVICE[:2], ("caller", "meter-2")]
    other_route = [DEVICE[0], ("route", "readings"), DEVICE[2]]
    assert [(await limits.check(d)).allowed for d in (DEVICE, DEVICE, other_caller, other_route)] == [
        True, False, True, True]


async def test_the_value_entry_wins_and_unmatched_descriptors_are_not_limited(limiter) -> None:
    limits = limiter(load_config(DEFAULT_CONFIG_FILE))
    token = await limits.check([("caller_kind", "anonymous"), ("route", "auth"), ("caller", "10.0.0.9")])
    readings = await limits.check([("caller_kind", "anonymous"), ("route", "readings"), ("caller", "10.0.0.9")])
    assert (token.limit, token.remaining) == (1, 0)
    assert (readings.limit, readings.remaining) == (5, 4)
    assert await limits.check([("caller_kind", "robot"), ("route", "auth"), ("caller", "r")]) is None
    assert await limits.check([("caller_kind", "device"), ("route", "ingest")]) is None


async def test_a_zero_limit_refuses_without_asking_redis(prefix) -> None:
    unreachable = connect(f"redis://127.0.0.1:{free_port()}/0")
    limits = RateLimiter(unreachable, load_config(config("hour", 0)), prefix=prefix)
    decision = await limits.check(DEVICE)
    assert decision is not None and not decision.allowed and headers(decision)["Retry-After"] == "3600"
    await unreachable.aclose()


async def test_redis_unavailable_allows_counts_and_warns(prefix, caplog) -> None:
    unreachable = connect(f"redis://127.0.0.1:{free_port()}/0")
    limits = RateLimiter(unreachable, load_config(config("second", 1)), prefix=prefix)
    before = REGISTRY.get_sample_value("smartgrid_gateway_ratelimit_errors_total") or 0.0
    with caplog.at_level(logging.WARNING, logger="smartgrid.gateway.ratelimit"):
        assert [await limits.check(DEVICE) for _ in range(3)] == [None, None, None]
    assert REGISTRY.get_sample_value("smartgrid_gateway_ratelimit_errors_total") == before + 3
    assert "request allowed (fail open)" in caplog.text and "ConnectionError" in caplog.text
    await unreachable.aclose()


# One gateway process: connects, waits for the common start, then checks concurrently; prints
# "<allowed> <not answered>".
WORKER = """
import asyncio, sys, time
from local.gateway.ratelimit import RateLimiter, load_config
from shared.stores.redis import connect

async def main(url, prefix, text, start_at, attempts):
    client = connect(url)
    limits = RateLimiter(client, load_config(text), prefix=prefix, timeout_s=10.0)
    await client.ping()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    pairs = [("caller_kind", "device"), ("route", "ingest"), ("caller", "meter-1")]
    decisions = await asyncio.gather(*(limits.check(pairs) for _ in range(attempts)))
    print(sum(d is not None and d.allowed for d in decisions), sum(d is None for d in decisions))
    await client.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])))
"""


async def test_gateway_processes_share_one_bucket_exactly(redis_url: str, prefix: str) -> None:
    limit, processes, attempts = 25, 4, 15  # 60 attempts at once against 25 tokens a day
    start_at = time.time() + 3.0
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, redis_url, prefix, config("day", limit), str(start_at), str(attempts),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(processes)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(worker.communicate() for worker in workers)), 60)
    counts = []
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
        allowed, unanswered = map(int, out.split())
        assert unanswered == 0, err.decode()
        counts.append(allowed)
    assert sum(counts) == limit, counts
