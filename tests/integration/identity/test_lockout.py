"""Brute-force protection through the users service's real token endpoint: a second instance of the users
function on the session's database with small limits and the client address taken from a test header (as
behind the Istio ingress gateway's `x-envoy-external-address`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from local.functions import Function
from local.servers.process import free_port
from local.users_client import UsersClient
from shared.users.api import AUTH_PREFIX
from tests.identity import Identity
from tests.integration.identity.conftest import PASSWORD

pytestmark = pytest.mark.integration
SOURCE = Path(__file__).resolve().parents[3] / "functions" / "users" / "main.py"
LIMITS = {"SMARTGRID_LOGIN_MAX_FAILURES": "3", "SMARTGRID_LOGIN_ADDRESS_MAX_FAILURES": "6",
          "SMARTGRID_LOCKOUT_WAIT": "1", "SMARTGRID_LOCKOUT_MAX_WAIT": "4",
          "SMARTGRID_CLIENT_ADDRESS_HEADER": "X-Test-Client"}


@pytest.fixture(scope="module")
async def strict_issuer(identity: Identity, domain_dsns: dict[str, str], tmp_path_factory) -> AsyncIterator[str]:
    """The token endpoint's issuer URL of a users function with the LIMITS (same keys, same database)."""
    port = free_port()
    env = {"SMARTGRID_DSN_USERS": domain_dsns["users"], "SMARTGRID_AUTH_ISSUER": identity.issuer,
           "SMARTGRID_AUTH_KEYS_DIR": str(identity.keys.folder), **LIMITS}
    process = Function("users", SOURCE).process(port, "http://127.0.0.1:9/unused", env,
                                                tmp_path_factory.mktemp("strict") / "users.log")
    await asyncio.to_thread(process.start, port)
    try:
        yield f"http://127.0.0.1:{port}{AUTH_PREFIX}"
    finally:
        await asyncio.to_thread(process.stop)


async def login(session: aiohttp.ClientSession, issuer: str, username: str, password: str, address: str) -> int:
    async with session.post(f"{issuer}/token", headers={"X-Test-Client": address}, data={
            "grant_type": "password", "username": username, "password": password}) as response:
        body = await response.json()
        assert response.status == 200 or body == {"error": "invalid_grant", "error_description": "Invalid user credentials"}
        return response.status


async def test_wrong_passwords_lock_the_user_with_a_growing_delay(
    strict_issuer: str, users: UsersClient, new_user
) -> None:
    name, address = await new_user("operator"), f"10.0.{uuid.uuid4().int % 250}.1"
    session = users._session
    for _ in range(3):
        assert await login(session, strict_issuer, name, "wrong-but-long", address) == 400
    locked = (await users.update_user(name, role="operator"))["locked_until"]
    assert locked is not None and (await users.audit(actor=name, action="login"))["entries"][-1]["outcome"] == "failure"
    assert await login(session, strict_issuer, name, PASSWORD, address) == 400, "the right password fails while locked"
    after_right_one = (await users.update_user(name, role="operator"))["locked_until"]
    assert after_right_one > locked, "each failure during the lock doubles it (1 s, 2 s, ...)"
    reasons = [e["detail"]["reason"] for e in (await users.audit(actor=name, action="login"))["entries"]]
    assert reasons == ["wrong password"] * 3 + ["user locked"]
    await asyncio.sleep(4.2)  # the lock (at most SMARTGRID_LOCKOUT_MAX_WAIT) is over
    assert await login(session, strict_issuer, name, PASSWORD, address) == 200
    assert (await users.update_user(name, role="operator"))["failed_logins"] == 0, "a success resets the user"


async def test_an_address_spraying_many_users_is_locked_for_everyone(
    strict_issuer: str, users: UsersClient, new_user
) -> None:
    sprayer, bystander = f"10.1.{uuid.uuid4().int % 250}.9", f"10.2.{uuid.uuid4().int % 250}.9"
    names = [await new_user("viewer") for _ in range(6)]
    for name in names:  # one wrong password each: no user reaches its limit
        assert await login(users._session, strict_issuer, name, "not-the-password", sprayer) == 400
    started = time.monotonic()
    assert await login(users._session, strict_issuer, names[0], PASSWORD, sprayer) == 400, "the address is locked"
    assert await login(users._session, strict_issuer, names[0], PASSWORD, bystander) == 200, "others are not"
    assert time.monotonic() - started < 4
    entries = (await users.audit(actor=names[0], action="login"))["entries"]
    assert [e["detail"]["reason"] for e in entries if e["outcome"] == "failure"][-1] == "address locked"


async def test_an_admin_unlocks_a_user(strict_issuer: str, users: UsersClient, new_user) -> None:
    name, address = await new_user("analyst"), f"10.3.{uuid.uuid4().int % 250}.1"
    for _ in range(3):
        await login(users._session, strict_issuer, name, "wrong-but-long", address)
    assert (await users.update_user(name, unlock=True))["locked_until"] is None
    assert await login(users._session, strict_issuer, name, PASSWORD, address) == 200
