"""Identity and access, attacked through the running platform (`smartgrid up`) with real tokens from its
token endpoint: the role x route matrix, forged tokens (refused and audited), a device speaking for
another, a device forging an alert."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import psycopg
import pytest

from local.users_client import UsersClient
from shared.cloudevents import new_event, to_http_binary
from tests.identity import Identity, forged_tokens
from tests.integration.functions.test_readings_path import SENSOR, count, sensor_data

pytestmark = pytest.mark.integration

PASSWORD = "tidal-harbor-lantern-42"
ROLES = ("viewer", "operator", "analyst", "admin")
READERS = {"viewer", "operator", "analyst", "admin"}
OPERATORS, ANALYSTS, ADMINS, DEVICES = {"operator", "admin"}, {"analyst", "admin"}, {"admin"}, {"device"}
# (service endpoint name, method, path below the service's root, JSON body, who may call it). Bodies of
# allowed mutations are invalid on purpose: the handler answers 4xx, and nothing changes.
ROUTES = [
    ("alerts", "GET", "/api/v1/alerts", None, READERS),
    ("alerts", "GET", "/api/v1/alerts/no:such:1", None, READERS),
    ("alerts", "GET", "/api/v1/alerts/no:such:1/history", None, READERS),
    ("alerts", "POST", "/api/v1/alerts/no:such:1/acknowledge", None, OPERATORS),
    ("alerts", "POST", "/api/v1/alerts/no:such:1/clear", None, OPERATORS),
    ("analytics", "GET", "/api/v1/analytics/meters/m-none", None, READERS),
    ("analytics", "GET", "/api/v1/analytics/meters/m-none/latest", None, READERS),
    ("analytics", "GET", "/api/v1/analytics/feeders/F-none/counters", None, READERS),
    ("forecast", "GET", "/api/v1/forecasts/feeders/F-none", None, READERS),
    ("forecast", "GET", "/api/v1/forecasts/regions/none/models", None, READERS),
    ("forecast", "POST", "/", None, ADMINS),
    ("readings", "GET", "/api/v1/readings/meters", None, ANALYSTS),
    ("readings", "GET", "/api/v1/readings/sensors/s-none", None, ANALYSTS),
    ("users", "GET", "/api/v1/users", None, ADMINS),
    ("users", "POST", "/api/v1/users", {"username": "x"}, ADMINS),
    ("users", "GET", "/api/v1/users/nobody", None, ADMINS),
    ("users", "PATCH", "/api/v1/users/nobody", {"role": "viewer"}, ADMINS),
    ("users", "DELETE", "/api/v1/users/nobody", None, ADMINS),
    ("users", "GET", "/api/v1/devices", None, ADMINS),
    ("users", "POST", "/api/v1/devices", {"kind": "sensor"}, ADMINS),
    ("users", "GET", "/api/v1/devices/none", None, ADMINS),
    ("users", "DELETE", "/api/v1/devices/none", None, ADMINS),
    ("users", "GET", "/api/v1/audit", None, ADMINS),
    ("ingest", "POST", "/", None, DEVICES),
]


def root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="module")
async def callers(platform: dict[str, str], platform_identity: Identity) -> AsyncIterator[dict[str, dict[str, str]]]:
    """`Authorization` headers by caller: a user of each role and a sensor, each token from the token endpoint."""
    tag = uuid.uuid4().hex[:6]
    async with aiohttp.ClientSession() as session:
        admin = UsersClient(platform["auth"], platform_identity.token(("admin",), subject="tests", kind="service"),
                            session)
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        for role in ROLES:
            await admin.create_user(f"{role}-{tag}", role, PASSWORD)
            token = await admin.password_token(f"{role}-{tag}", PASSWORD)
            headers[role] = {"Authorization": f"Bearer {token['access_token']}"}
        sensor = (await admin.register([{"device_id": f"s-matrix-{tag}", "kind": "sensor"}]))[0]
        token = await admin.client_token(sensor["client_id"], sensor["client_secret"])
        headers["device"] = {"Authorization": f"Bearer {token['access_token']}"}
        headers["device:id"] = {"id": sensor["device_id"]}
        yield headers


def expected(allowed: set[str], caller: str) -> set[int] | None:
    """401 for anonymous, 403 for a caller without a role allowed; None: any answer of the handler."""
    if caller == "anonymous":
        return {401}
    return None if caller in allowed else {403}


async def test_every_route_for_every_caller_answers_as_the_matrix_says(platform, callers) -> None:
    failures = []
    async with aiohttp.ClientSession() as session:
        for service, method, path, body, allowed in ROUTES:
            url = root(platform[service]) + path
            for caller in ("anonymous", *ROLES, "device"):
                data, headers = None, dict(callers[caller])
                if service == "ingest":
                    data_headers, data = to_http_binary(new_event(
                        SENSOR, "/tests", uuid.uuid4().hex, sensor_data(callers["device:id"]["id"])))
                    headers.update(data_headers)
                elif service == "forecast" and method == "POST":
                    data_headers, data = to_http_binary(new_event("dev.knative.sources.ping", "/t", "p", {"job": "x"}))
                    headers.update(data_headers)
                async with session.request(method, url, json=body, data=data, headers=headers) as response:
                    status, answer = response.status, await response.json(content_type=None)
                want = expected(allowed, caller)
                ok = status in want if want else status not in (401, 403) and status < 500
                if not ok:
                    failures.append((caller, method, path, status, answer))
                elif status in (401, 403):
                    assert answer["field"] == "authorization" and "WWW-Authenticate" in response.headers
    assert not failures, "\n".join(map(str, failures))


async def test_forged_tokens_are_refused_and_audited(platform, platform_identity: Identity, callers) -> None:
    forged = forged_tokens(platform_identity, subject=f"mallory-{uuid.uuid4().hex[:6]}")
    async with aiohttp.ClientSession() as session:
        for name, token in forged.items():
            async with session.get(platform["alerts"], headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 401, name
                assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], name
        admin = UsersClient(platform["auth"], platform_identity.token(("admin",), subject="tests", kind="service"),
                            session)

        async def audited() -> list[dict]:
            entries = (await admin.audit(action="token.rejected", limit="1000"))["entries"]
            ours = [e for e in entries if e["source"] == "/smartgrid/functions/alerts"]
            return ours if len(ours) >= len(forged) else []

        deadline = asyncio.get_running_loop().time() + 30
        while not (entries := await audited()):
            assert asyncio.get_running_loop().time() < deadline, "refusals not in the audit log"
            await asyncio.sleep(0.3)
    reasons = " ".join(e["detail"]["reason"] for e in entries).lower()
    for fragment in ("alg rs256, found 'none'", "'hs256'", "expired", "not yet valid", "issuer", "audience",
                     "signature verification failed", "made-up-kid", "expected a jwt"):
        assert fragment in reasons, fragment


async def test_a_device_cannot_send_for_another_or_forge_alerts(platform, domain_dsns, callers) -> None:
    victim = f"s-victim-{uuid.uuid4().hex[:6]}"
    alert_id = f"forged-{uuid.uuid4().hex[:8]}"
    forged_alert = {"alert_id": alert_id, "rule_id": "frequency", "device_id": victim, "severity": "emergency",
                    "message": "forged", "value": 1.0, "threshold": 0.0, "raised_at": "2026-12-07T10:00:00Z"}
    async with aiohttp.ClientSession() as session:
        for type_, data, field in ((SENSOR, sensor_data(victim), "data.device_id"),
                                   ("com.smartgrid.alert.raised", forged_alert, "type"),
                                   ("com.smartgrid.alert.cleared", forged_alert, "type")):
            headers, body = to_http_binary(new_event(type_, "/tests", uuid.uuid4().hex, data))
            async with session.post(platform["ingest"], data=body,
                                    headers={**headers, **callers["device"]}) as response:
                answer = await response.json()
                assert (response.status, answer["field"]) == (403, field), answer
    await asyncio.sleep(3)  # what was accepted would be stored and notified by now
    assert count(domain_dsns["smartgrid"], "sensor_readings", "device_id", victim) == 0

    def notified() -> int:
        with psycopg.connect(domain_dsns["smartgrid"]) as conn:
            return conn.execute("SELECT count(*) FROM notification_attempts WHERE alert_id = %s",
                                (alert_id,)).fetchone()[0]

    assert notified() == 0, "nothing reached notify"
