"""The gateway `smartgrid up` lists, enforcing knative/istio/ in front of the real functions: every route of
the VirtualService reaches its function, unknown paths are 404, who may call what equals the policies
(which follow the role matrix of shared/auth/policy.py), CORS, conditional GET and no-store."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from local.gateway.manifests import load_manifests
from shared.auth.policy import allowed_roles
from tests.identity import Identity

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CONSOLE = "https://grid.example.com"  # the CORS origin of knative/istio/gateway.yaml
ROLES = ("viewer", "operator", "analyst", "admin")


async def send(session: aiohttp.ClientSession, method: str, url: str,
               **kwargs) -> tuple[int, CIMultiDict[str], bytes]:
    """(status, headers, body); a 429 of the gateway's rate limit is waited out (other tests share its buckets)."""
    for _ in range(5):
        async with session.request(method, url, **kwargs) as response:
            body = await response.read()
            if response.status != 429 or "RateLimit-Limit" not in response.headers:
                return response.status, CIMultiDict(response.headers), body
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError(f"{method} {url}: still rate limited")


def function_url(platform: dict[str, str], name: str) -> str:
    return str(URL(platform[name]).origin())


@pytest.fixture
async def device(devices) -> dict[str, str]:
    """A registered sensor's Authorization header."""
    device_id = f"gw-{uuid.uuid4().hex[:8]}"
    await devices.register({"device_id": device_id, "kind": "sensor"})
    return devices.identity.device(device_id, "sensor")


async def test_the_gateway_is_listed(platform: dict[str, str]) -> None:
    assert platform["gateway"].startswith("http://127.0.0.1:")


async def test_every_route_reaches_its_function(platform: dict[str, str], platform_identity: Identity,
                                                device: dict[str, str]) -> None:
    viewer, admin = platform_identity.headers("viewer"), platform_identity.headers("admin")
    operator = platform_identity.headers("operator")
    unknown = uuid.uuid4().hex[:8]
    # route name -> (method, public path, the function's own path, headers)
    samples = {
        "ingest": ("POST", "/api/v1/ingest", "ingest", "/", {**device, "content-type": "application/json"}),
        "auth": ("GET", "/api/v1/auth/.well-known/openid-configuration", "users",
                 "/api/v1/auth/.well-known/openid-configuration", {}),
        "admin-read": ("GET", "/api/v1/users", "users", "/api/v1/users", admin),
        "admin": ("DELETE", f"/api/v1/users/nobody-{unknown}", "users", f"/api/v1/users/nobody-{unknown}", admin),
        "alerts-read": ("GET", "/api/v1/alerts?limit=1", "alerts", "/api/v1/alerts?limit=1", viewer),
        "alerts": ("POST", f"/api/v1/alerts/{unknown}/acknowledge", "alerts", f"/api/v1/alerts/{unknown}/acknowledge",
                   operator),
        "analytics": ("GET", f"/api/v1/analytics/meters/m-{unknown}/counters", "analytics",
                      f"/api/v1/analytics/meters/m-{unknown}/counters", viewer),
        "forecasts": ("GET", f"/api/v1/forecasts/feeders/f-{unknown}/models", "forecast",
                      f"/api/v1/forecasts/feeders/f-{unknown}/models", viewer),
    }
    routes = [route.name for vs in load_manifests(REPO / "knative" / "istio").bound() for route in vs.routes]
    assert sorted(routes) == sorted(samples), "give every route of the VirtualService a sample request"
    async with aiohttp.ClientSession() as session:
        for name, (method, path, function, own_path, headers) in samples.items():
            body = b"{}" if method == "POST" else None
            status, answer_headers, answer = await send(session, method, platform["gateway"] + path,
                                                        headers=headers, data=body)
            direct_status, _, direct = await send(session, method, function_url(platform, function) + own_path,
                                                  headers=headers, data=body)
            assert status == direct_status, (name, status, answer[:300])
            assert answer_headers["Content-Type"].startswith("application/json"), name
            assert answer != b"RBAC: access denied" and b'"no route"' not in answer, name
            if name == "auth":
                assert answer == direct  # the very document of the users function
                assert b'"issuer"' in answer


async def test_an_unknown_path_is_404_naming_path(platform: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/api/v2/alerts"), ("GET", "/"), ("DELETE", "/api/v1/analytics/x"),
                             ("GET", "/api/v1/ingest")):
            status, headers, body = await send(session, method, platform["gateway"] + path)
            assert status == 404, (method, path)
            assert b'"field":"path"' in body.replace(b" ", b"")
            assert headers["X-Content-Type-Options"] == "nosniff"


def expected(caller: str, method: str, path: str) -> bool:
    """What knative/istio/authorization-policy.yaml says: the issuer's endpoints for anyone, ingest for
    devices, the APIs for the roles of the matrix (shared/auth/policy.py) with a verified token."""
    if path.startswith("/api/v1/auth/"):
        return True
    if path == "/api/v1/ingest":
        return caller == "device"
    return caller in ROLES and caller in allowed_roles(method, path.split("?")[0])


async def test_the_authorization_matrix_through_the_gateway(platform: dict[str, str], platform_identity: Identity,
                                                            device: dict[str, str]) -> None:
    callers = {"anonymous": {}, "device": device,
               **{role: platform_identity.headers(role, subject=f"matrix-{role}") for role in ROLES}}
    requests = [("GET", "/api/v1/alerts"), ("GET", "/api/v1/alerts/x/history"), ("POST", "/api/v1/alerts/x/acknowledge"),
                ("POST", "/api/v1/alerts/x/clear"), ("GET", "/api/v1/analytics/meters/m/counters"),
                ("GET", "/api/v1/forecasts/feeders/f/models"), ("GET", "/api/v1/users"), ("GET", "/api/v1/devices"),
                ("GET", "/api/v1/audit"), ("POST", "/api/v1/ingest"), ("GET", "/api/v1/auth/jwks")]
    found, wanted = {}, {}
    async with aiohttp.ClientSession() as session:
        for caller, headers in callers.items():
            for method, path in requests:
                status, _, body = await send(session, method, platform["gateway"] + path, headers=headers,
                                             data=b"{}" if method == "POST" else None)
                assert status != 401, (caller, method, path, body[:200])
                found[caller, method, path] = not (status == 403 and body == b"RBAC: access denied")
                wanted[caller, method, path] = expected(caller, method, path)
    assert found == wanted


async def test_a_token_that_does_not_verify_is_401(platform: dict[str, str], platform_identity: Identity) -> None:
    token = platform_identity.token(("admin",), lifetime_s=-3600)  # expired an hour ago
    async with aiohttp.ClientSession() as session:
        status, _, body = await send(session, "GET", platform["gateway"] + "/api/v1/alerts",
                                     headers={"Authorization": f"Bearer {token}"})
    assert (status, body) == (401, b"Jwt verification fails")


async def test_cors_preflight(platform: dict[str, str]) -> None:
    url = platform["gateway"] + "/api/v1/alerts"
    async with aiohttp.ClientSession() as session:
        status, headers, _ = await send(session, "OPTIONS", url, headers={
            "Origin": CONSOLE, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == CONSOLE
        assert "GET" in headers["Access-Control-Allow-Methods"].split(",")
        assert headers["Access-Control-Max-Age"] == "3600"
        status, headers, _ = await send(session, "OPTIONS", url, headers={
            "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
        assert "Access-Control-Allow-Origin" not in headers
        assert status == 403  # forwarded like any request: the alerts policy admits no OPTIONS


async def test_a_repeated_get_with_its_etag_is_304(platform: dict[str, str], platform_identity: Identity) -> None:
    url = platform["gateway"] + "/api/v1/alerts?limit=1"
    headers = platform_identity.headers("viewer", subject="etag-viewer")
    async with aiohttp.ClientSession() as session:
        status, first, body = await send(session, "GET", url, headers=headers)
        assert status == 200 and body
        etag = first["ETag"]
        status, again, body = await send(session, "GET", url, headers={**headers, "If-None-Match": etag})
        assert (status, body, again["ETag"]) == (304, b"", etag)


async def test_identity_answers_are_no_store(platform: dict[str, str], platform_identity: Identity) -> None:
    async with aiohttp.ClientSession() as session:
        for path, headers in (("/api/v1/auth/jwks", {}), ("/api/v1/users", platform_identity.headers("admin"))):
            status, answer, _ = await send(session, "GET", platform["gateway"] + path, headers=headers)
            assert status == 200
            assert answer["Cache-Control"] == "no-store"
            assert "ETag" not in answer
