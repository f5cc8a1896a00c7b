"""Fixtures of the analytics tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.stores.postgres import Database


@pytest.fixture
async def database(domain_dsns: dict[str, str]) -> AsyncIterator[Database]:
    """A pool on this session's analytics database."""
    database = Database(domain_dsns["analytics"])
    yield database
    await database.close()
