"""Fixtures shared by the integration tests of the functions' domain code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.eventing.subscriber import Subscriber


@pytest.fixture
async def broker() -> AsyncIterator[Subscriber]:
    """An HTTP endpoint standing in for the broker (K_SINK): records the events emitted to it."""
    subscriber = Subscriber()
    await subscriber.start()
    yield subscriber
    await subscriber.stop()
