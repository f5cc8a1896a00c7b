"""The local gateway on the test mesh (fixtures/mesh.yaml): routing, weights, retries, timeouts, JWT,
authorization, CORS, conditional GET, rate limits and the body cap, each against two echoing backends."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.identity import forged_tokens

pytestmark = pytest.mark.integration

SECURITY_HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


async def test_weighted_destinations_split_within_a_binomial_bound(start_gateway, client) -> None:
    gateway = await start_gateway()
    n, p = 400, 0.8
    blue = 0
    for _ in range(n):
        async with client.get(f"{gateway.url}/split") as response:
            assert response.status == 200
            blue += (await response.json())["service"] == "blue"
    # 80/20 split: blue's count is Binomial(400, 0.8); 5 standard deviations (8 requests each) either side
    # fail a correct gateway once in ~3.5 million runs.
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(blue - n * p) <= 5 * sigma, f"{blue} of {n} went to blue, expected {n * p:.0f} ± {5 * sigma:.0f}"


async def test_first_matching_route_wins_and_headers_select(start_gateway, client) -> None:
    gateway = await start_gateway()
    async with client.get(f"{gateway.url}/color/x?q=1") as response:
        answer = await response.json()
        assert (answer["service"], answer["path"]) == ("blue", "/color/x?q=1")
    async with client.get(f"{gateway.url}/color/x", headers={"x-canary": "yes"}) as response:
        assert (await response.json())["service"] == "green"
    async with client.get(f"{gateway.url}/color/x", headers={"x-canary": "no"}) as response:
        assert (await response.json())["service"] == "blue"
    # The path is normalised before matching: %63 is "c", dot segments are removed.
    async with client.get(f"{gateway.url}/split/../%63olor", headers={"x-canary": "yes"}) as response:
        assert (await response.json()) | {"headers": None} == {
            "service": "green", "path": "/color", "method": "GET", "headers": None, "body": 0}


async def test_an_unknown_path_is_404_naming_the_path(start_gateway, client) -> None:
    gateway = await start_gateway()
    async with client.get(f"{gateway.url}/nowhere") as response:
        assert response.status == 404
        assert (await response.json())["field"] == "path"
        for name in SECURITY_HEADERS:
            assert name in response.headers
    # A regex route matches the whole path only.
    async with client.get(f"{gateway.url}/cached/abc1") as response:
        assert response.status == 404


async def test_retries_on_the_listed_conditions_only(start_gateway, client, mesh) -> None:
    gateway = await start_gateway()
    async with client.get(f"{gateway.url}/flaky", headers={"x-request-key": "a"}) as response:
        assert response.status == 200  # two 503s retried (attempts: 2, retryOn 5xx), the third try answers
        answer = await response.json()
        assert answer["path"] == "/fail-twice"
        assert answer["headers"]["X-Envoy-Original-Path"] == "/flaky"
    async with client.post(f"{gateway.url}/flaky-once", headers={"x-request-key": "b"}) as response:
        assert response.status == 503  # attempts: 0: the backend's own 503 goes out
        assert (await response.json())["service"] == "blue"
    assert mesh["backends"]["blue"].failures["b"] == 1


async def test_the_route_timeout_answers_504(start_gateway, client) -> None:
    gateway = await start_gateway()
    async with client.get(f"{gateway.url}/slow") as response:
        assert response.status == 504
        assert (await response.json())["error"] == "upstream request timeout"


async def test_jwt_and_authorization_at_the_destination(start_gateway, client, mesh) -> None:
    gateway = await start_gateway()
    identity = mesh["identity"]
    url = f"{gateway.url}/secure/things"
    async with client.get(url) as response:  # no token: no request principal, so no ALLOW rule matches
        assert (response.status, await response.text()) == (403, "RBAC: access denied")
    for name, token in forged_tokens(identity).items():
        async with client.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert (response.status, await response.text()) == (401, "Jwt verification fails"), name
            assert "invalid_token" in response.headers["WWW-Authenticate"]
    for role, status in (("viewer", 403), ("analyst", 403), ("operator", 200), ("admin", 200)):
        async with client.get(url, headers=identity.headers(role)) as response:
            assert response.status == status, role
            if status == 200:
                answer = await response.json()
                assert answer["path"] == "/api/v1/secure/things"  # the policy saw the rewritten path
                assert answer["headers"]["Authorization"].startswith("Bearer ")  # forwardOriginalToken
    # DENY before ALLOW: a device holding the operator role is still refused.
    token = identity.token(("operator",), subject="s-1", kind="device", device_kind="sensor")
    async with client.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 403
    # Without a token the gateway's own identity suffices where a rule asks for nothing more.
    async with client.get(f"{gateway.url}/color", headers={"x-canary": "yes"}) as response:
        assert response.status == 200
    async with client.post(f"{gateway.url}/color", headers={"x-canary": "yes"}) as response:
        assert response.status == 403


async def test_cors_preflight_allowed_for_a_listed_origin_only(start_gateway, client) -> None:
    gateway = await start_gateway()
    url = f"{gateway.url}/secure/things"
    for origin in ("https://console.example.com", "https://ops.example.org"):
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization"}
        async with client.options(url, headers=preflight) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert response.headers["Access-Control-Allow-Methods"] == "GET,POST"
            assert response.headers["Access-Control-Allow-Headers"] == "authorization"
            assert response.headers["Access-Control-Max-Age"] == "600"
    refused = {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"}
    async with client.options(url, headers=refused) as response:
        # Forwarded like any request (unmatchedPreflights FORWARD): the policy refuses it, and no CORS header.
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_etag_and_304_on_a_cacheable_get(start_gateway, client) -> None:
    gateway = await start_gateway()
    url = f"{gateway.url}/cached/abc"
    async with client.get(url) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "max-age=60"  # headers.response.set of the route
        etag = response.headers["ETag"]
    async with client.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "max-age=60"
        assert await response.read() == b""


def limits_file(folder: Path, limits: dict[str, tuple[int, str]]) -> Path:
    """A rate limit config (envoyproxy/ratelimit's format) limiting the route `limited` per caller kind:
    kind -> (requests, unit)."""
    path = folder / "limits.yaml"
    path.write_text(yaml.safe_dump({"domain": "test", "descriptors": [
        {"key": "caller_kind", "value": kind, "descriptors": [{"key": "route", "value": "limited", "descriptors": [
            {"key": "caller", "rate_limit": {"unit": unit, "requests_per_unit": requests}}]}]}
        for kind, (requests, unit) in limits.items()]}))
    return path


async def test_a_burst_over_the_limit_is_answered_429(start_gateway, client, mesh, tmp_path: Path) -> None:
    config = limits_file(tmp_path, {"anonymous": (3, "minute"), "user": (2, "minute")})
    gateway = await start_gateway(rate_limits=config)
    statuses = []
    for _ in range(5):
        async with client.get(f"{gateway.url}/limited") as response:
            statuses.append(response.status)
            if response.status == 429:
                body = await response.json()
                assert body["error"] == "rate limited"
                assert int(response.headers["Retry-After"]) >= 1
                assert response.headers["RateLimit-Limit"] == "3"
                assert response.headers["RateLimit-Remaining"] == "0"
            else:
                assert "RateLimit-Remaining" in response.headers
    assert statuses == [200, 200, 200, 429, 429]
    # A user's budget is their own (by token subject), not the address's.
    user = mesh["identity"].headers("viewer", subject=f"u-{uuid.uuid4().hex[:6]}")
    statuses = []
    for _ in range(3):
        async with client.get(f"{gateway.url}/limited", headers=user) as response:
            statuses.append(response.status)
    assert statuses == [200, 200, 429]
    async with client.get(f"{gateway.url}/color") as response:  # another route: not limited
        assert response.status == 200


async def test_two_gateways_share_the_limit_and_the_bucket_refills(start_gateway, client, tmp_path: Path) -> None:
    config = limits_file(tmp_path, {"anonymous": (4, "second")})
    prefix = f"test-shared-{uuid.uuid4().hex[:8]}:"  # one Redis prefix: the replicas' common buckets
    gateways = [await start_gateway(rate_limits=config, redis_prefix=prefix) for _ in range(2)]

    async def burst() -> list[int]:
        statuses = []
        for index in range(8):
            async with client.get(f"{gateways[index % 2].url}/limited") as response:
                statuses.append(response.status)
        return statuses

    first = await burst()
    assert first.count(200) == 4 and first.count(429) == 4, first
    await asyncio.sleep(1.1)  # 4 tokens a second: full again
    assert (await burst()).count(200) == 4


async def test_a_body_over_the_cap_is_413_naming_body(start_gateway, client) -> None:
    gateway = await start_gateway(max_body_bytes=1000)
    async with client.post(f"{gateway.url}/color", data=b"x" * 500) as response:
        assert response.status == 200
        assert (await response.json())["body"] == 500
    async with client.post(f"{gateway.url}/color", data=b"x" * 5000) as response:
        assert response.status == 413
        assert (await response.json())["field"] == "body"
        assert "X-Content-Type-Options" in response.headers

    async def chunks():
        for _ in range(10):
            yield b"y" * 400

    # No Content-Length: counted while it streams.
    async with aiohttp.ClientSession() as fresh, fresh.post(f"{gateway.url}/color", data=chunks()) as response:
        assert response.status == 413


async def test_a_destination_that_refuses_connections_is_503(start_gateway, client) -> None:
    gateway = await start_gateway()
    async with client.get(f"{gateway.url}/gone") as response:  # Istio's default retries, then Envoy's 503
        assert response.status == 503
        answer = await response.json()
        assert answer["error"] == "upstream connect error or disconnect/reset before headers"
        assert "connection failure" in answer["message"]


async def test_oversized_headers_and_slow_clients_are_cut_off(start_gateway) -> None:
    gateway = await start_gateway(max_header_bytes=1024, client_timeout_s=0.5)
    host, port = gateway.url.removeprefix("http://").split(":")
    big = {"x-big": "b" * 2000}
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/color", headers=big) as response:
        assert response.status == 400
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /color HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # the headers never end
    await writer.drain()
    began = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without an answer
    assert asyncio.get_running_loop().time() - began < 3
    writer.close()


async def test_tls_with_the_configured_certificate(start_gateway, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    gateway = await start_gateway(tls_cert=cert, tls_key=key)
    assert gateway.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/color", ssl=context) as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
