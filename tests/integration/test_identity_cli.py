"""`smartgrid users`, `devices`, `auth rotate-key` and `audit` run as commands against the session's
running platform (`smartgrid up`), as an administrator would."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from local.state import PlatformState
from local.users_client import UsersApiError, UsersClient
from shared.cloudevents import new_event
from shared.deadletters import DeadLetterStore
from shared.stores.postgres import Database
from tests.integration.platform import wait_until

pytestmark = pytest.mark.integration

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))
PASSWORD = "correct horse battery staple 42"


def smartgrid(endpoints: dict[str, str], db_prefix: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Run `smartgrid ARGS` against the platform as its state file describes it (no client or DSN of ours)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("SMARTGRID_DSN_") and name not in ("SMARTGRID_CLIENT_ID", "SMARTGRID_CLIENT_SECRET")}
    env.update(SMARTGRID_STATE_DIR=endpoints["state_dir"], SMARTGRID_DB_PREFIX=db_prefix)
    return subprocess.run([SMARTGRID, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60,
                          check=False)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def users(platform: dict[str, str]) -> AsyncIterator[UsersClient]:
    """The users service as the platform's own command-line client (role admin)."""
    client = PlatformState.load(Path(platform["state_dir"])).client
    async with aiohttp.ClientSession() as session:
        admin = UsersClient(platform["auth"], "", session)
        token = (await admin.client_token(client["client_id"], client["client_secret"]))["access_token"]
        yield UsersClient(platform["auth"], token, session)


async def test_users_create_reads_the_password_from_stdin_and_list_shows_the_user(
        platform, db_prefix, users: UsersClient) -> None:
    name = unique("ops")

    created = smartgrid(platform, db_prefix, "users", "create", name, "--role", "operator", "--password-stdin",
                        stdin=PASSWORD + "\n")

    assert created.returncode == 0, created.stderr
    assert re.search(rf"^{name}\s+operator\s+enabled\s", created.stdout, re.MULTILINE), created.stdout
    assert PASSWORD not in created.stdout + created.stderr
    assert (await users.password_token(name, PASSWORD))["access_token"]  # the whole line, spaces kept
    listed = smartgrid(platform, db_prefix, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("USERNAME") and re.search(rf"^{name}\s+operator\s+enabled\s", listed.stdout,
                                                              re.MULTILINE)
    disabled = smartgrid(platform, db_prefix, "users", "disable", name)
    assert disabled.returncode == 0 and re.search(rf"^{name}\s+operator\s+disabled\s", disabled.stdout, re.MULTILINE)
    with pytest.raises(UsersApiError):
        await users.password_token(name, PASSWORD)
    assert smartgrid(platform, db_prefix, "users", "enable", name).returncode == 0
    assert (await users.password_token(name, PASSWORD))["access_token"]
    audit = smartgrid(platform, db_prefix, "audit", "list", "--action", "user.create", "--limit", "1000")
    assert audit.returncode == 0, audit.stderr
    assert re.search(rf"\ssmartgrid-cli\s+user\.create\s+{name}\s+success\s", audit.stdout), audit.stdout


@pytest.mark.parametrize(("password", "why"), [
    ("short pass", "expected at least 12 characters, found 10"),
    ("qwerty123456", "not among the most common ones"),
])
async def test_users_create_refuses_a_weak_or_common_password(platform, db_prefix, password: str,
                                                              why: str) -> None:
    name = unique("weak")

    refused = smartgrid(platform, db_prefix, "users", "create", name, "--role", "viewer", "--password-stdin",
                        stdin=password + "\n")

    assert refused.returncode == 1
    assert "refused" in refused.stderr and why in refused.stderr and "(field password)" in refused.stderr
    assert password not in refused.stderr
    assert name not in smartgrid(platform, db_prefix, "users", "list").stdout


def test_users_create_without_a_password_on_stdin_changes_nothing(platform, db_prefix) -> None:
    name = unique("empty")

    refused = smartgrid(platform, db_prefix, "users", "create", name, "--role", "viewer", "--password-stdin")

    assert refused.returncode == 2 and "expected a password as the first line of stdin" in refused.stderr
    assert name not in smartgrid(platform, db_prefix, "users", "list").stdout


async def test_a_registered_device_takes_tokens_with_its_secret_until_it_is_revoked(
        platform, db_prefix, users: UsersClient) -> None:
    sensor = unique("s")

    registered = smartgrid(platform, db_prefix, "devices", "register", sensor, "--kind", "sensor")

    assert registered.returncode == 0, registered.stderr
    assert f"client id:     {sensor}\n" in registered.stdout
    assert "store it now; it is not shown again" in registered.stdout
    [secret] = re.findall(r"^client secret: (\S+)$", registered.stdout, re.MULTILINE)
    token = (await users.client_token(sensor, secret))["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == sensor and claims["device_kind"] == "sensor"
    listed = smartgrid(platform, db_prefix, "devices", "list", "--kind", "sensor")
    assert re.search(rf"^{sensor}\s+sensor\s+-\s+active\s", listed.stdout, re.MULTILINE), listed.stdout
    assert secret not in listed.stdout

    revoked = smartgrid(platform, db_prefix, "devices", "revoke", sensor)

    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked sensor {sensor}" in revoked.stdout
    with pytest.raises(UsersApiError) as refusal:
        await users.client_token(sensor, secret)
    assert refusal.value.status in (400, 401)
    listed = smartgrid(platform, db_prefix, "devices", "list", "--kind", "sensor")
    assert re.search(rf"^{sensor}\s+sensor\s+-\s+revoked ", listed.stdout, re.MULTILINE), listed.stdout


def test_a_meter_registers_behind_its_gateway_without_a_secret(platform, db_prefix) -> None:
    gateway, meter = unique("gw"), unique("m")
    assert "client secret: " in smartgrid(platform, db_prefix, "devices", "register", gateway, "--kind",
                                          "gateway").stdout

    registered = smartgrid(platform, db_prefix, "devices", "register", meter, "--kind", "meter", "--gateway", gateway)

    assert registered.returncode == 0, registered.stderr
    assert f"registered meter {meter} behind gateway {gateway}" in registered.stdout
    assert not re.search(r"^client secret:", registered.stdout, re.MULTILINE)
    assert "no client secret: its readings come through its gateway" in registered.stdout
    listed = smartgrid(platform, db_prefix, "devices", "list", "--gateway", gateway)
    assert re.search(rf"^{meter}\s+meter\s+{gateway}\s+active\s", listed.stdout, re.MULTILINE), listed.stdout


def test_an_unknown_device_is_refused_with_the_services_message(platform, db_prefix) -> None:
    refused = smartgrid(platform, db_prefix, "devices", "revoke", unique("nobody"))

    assert refused.returncode == 1
    assert "404" in refused.stderr and "expected a registered device id" in refused.stderr


def test_commands_without_a_running_platform_say_so(db_prefix, tmp_path: Path) -> None:
    refused = smartgrid({"state_dir": str(tmp_path)}, db_prefix, "users", "list")

    assert refused.returncode == 1 and "expected a running `smartgrid up`" in refused.stderr


async def test_rotate_key_publishes_two_keys_and_tokens_of_the_previous_key_keep_working(
        platform, db_prefix, users: UsersClient) -> None:
    state = PlatformState.load(Path(platform["state_dir"]))
    client = state.client
    before = (await users.client_token(client["client_id"], client["client_secret"]))["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]

    rotated = smartgrid(platform, db_prefix, "auth", "rotate-key")

    assert rotated.returncode == 0, rotated.stderr
    [new_kid] = re.findall(r"^new signing key (\S+) in ", rotated.stdout, re.MULTILINE)
    assert new_kid != old_kid and f"{old_kid} (verifies the tokens it signed" in rotated.stdout
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{platform['auth']}/jwks") as response:
            published = [key["kid"] for key in (await response.json())["keys"]]
        assert published == [new_kid, old_kid]

        async def alerts_answer(token: str) -> int:
            async with session.get(platform["alerts"], headers={"Authorization": f"Bearer {token}"}) as answer:
                return answer.status

        assert await alerts_answer(before) == 200
        after = (await users.client_token(client["client_id"], client["client_secret"]))["access_token"]
        assert jwt.get_unverified_header(after)["kid"] == new_kid
        for _ in range(100):  # a function refreshes its cached JWKS at most every 5 s
            if await alerts_answer(after) == 200:
                break
            await asyncio.sleep(0.1)
        assert await alerts_answer(after) == 200


async def test_audit_verify_passes_and_names_a_changed_row(
        platform, db_prefix, pg_admin_dsn: str) -> None:
    name = unique("audited")
    assert smartgrid(platform, db_prefix, "users", "create", name, "--role", "viewer", "--password-stdin",
                     stdin=PASSWORD + "\n").returncode == 0

    intact = smartgrid(platform, db_prefix, "audit", "verify")

    assert intact.returncode == 0, intact.stderr
    assert re.fullmatch(r"audit log intact: \d+ rows, head [0-9a-f]{64}\n", intact.stdout), intact.stdout
    users_db = make_conninfo(pg_admin_dsn, dbname=f"{db_prefix}users")
    with psycopg.connect(users_db, autocommit=True) as conn:
        seq, action = conn.execute("SELECT seq, action FROM audit_log WHERE action = 'user.create' AND target = %s",
                                   (name,)).fetchone()
        try:
            _tamper(conn, seq, "user.update")

            broken = smartgrid(platform, db_prefix, "audit", "verify")

            assert broken.returncode == 1
            assert f"row {seq}: its content does not match its hash" in broken.stderr, broken.stderr
            assert f"the {seq - 1} rows before it check out" in broken.stderr
        finally:
            _tamper(conn, seq, action)
    assert smartgrid(platform, db_prefix, "audit", "verify").returncode == 0


async def test_a_dead_letter_replay_is_audited_as_the_command_lines_client(
        platform, db_prefix) -> None:
    state = PlatformState.load(Path(platform["state_dir"]))
    event = new_event("com.smartgrid.test.unsubscribed", "/tests/identity-cli", unique("letter"), {"n": 1},
                      knativeerrorcode="500", knativeerrordest="http://nowhere.invalid")
    database = Database(state.dsns["smartgrid"], max_size=1)
    try:
        letter_id = await DeadLetterStore(database).save(event)
    finally:
        await database.close()

    replayed = smartgrid(platform, db_prefix, "dlq", "replay", "--id", str(letter_id))

    assert replayed.returncode == 0 and f"replayed 1 dead letter(s): {letter_id}" in replayed.stdout, replayed.stderr
    actor = state.client["client_id"]
    entry = re.compile(rf"\s{actor}\s+deadletter\.replay\s+{letter_id}\s+success\s+/smartgrid/cli\s")
    audited = await wait_until(lambda: entry.search(smartgrid(
        platform, db_prefix, "audit", "list", "--action", "deadletter.replay", "--limit", "1000").stdout), timeout=30)
    assert event.id in audited.string


def _tamper(conn: psycopg.Connection, seq: int, action: str) -> None:
    """Set one row's action past the append-only trigger (this session only: session_replication_role)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE audit_log SET action = %s WHERE seq = %s", (action, seq))
