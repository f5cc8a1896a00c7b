"""A fresh in-memory Redis and a fake clock per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from shared.stores.redis import Keys
from tests.unit.notify.factories import FakeClock


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys("test:")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
