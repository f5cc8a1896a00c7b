"""Fixtures of the identity tests: an admin's client of the session's users service, fresh users."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from local.users_client import UsersClient
from tests.identity import Identity

PASSWORD = "glass-otter-monsoon-17"


@pytest.fixture
async def users(identity: Identity) -> AsyncIterator[UsersClient]:
    """The users service's admin API, called with an admin service token."""
    async with aiohttp.ClientSession() as session:
        yield UsersClient(identity.issuer, identity.token(("admin",), subject="test-admin", kind="service"), session)


@pytest.fixture
def new_user(users: UsersClient) -> Callable[..., object]:
    """Creates a user with a fresh name (and PASSWORD); returns the name."""

    async def create(role: str = "viewer", password: str = PASSWORD) -> str:
        name = f"u-{uuid.uuid4().hex[:10]}"
        await users.create_user(name, role, password)
        return name

    return create
