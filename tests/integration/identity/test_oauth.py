"""The users service as an OAuth 2.0 / OpenID Connect server, through its real HTTP interface: discovery and
JWKS used by an outside client library (Authlib), the grants, refresh-token rotation and revocation."""

from __future__ import annotations

import asyncio
import base64

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from local.users_client import UsersApiError, UsersClient
from tests.identity import Identity
from tests.integration.identity.conftest import PASSWORD

pytestmark = pytest.mark.integration


def _discovery(identity: Identity) -> dict:
    return requests.get(f"{identity.issuer}/.well-known/openid-configuration", timeout=10).json()


async def test_discovery_names_the_endpoints_and_the_jwks_publishes_the_signing_key(identity: Identity) -> None:
    document = await asyncio.to_thread(_discovery, identity)
    assert document["issuer"] == identity.issuer
    assert document["token_endpoint"] == f"{identity.issuer}/token"
    assert document["revocation_endpoint"] == f"{identity.issuer}/revoke"
    assert set(document["grant_types_supported"]) == {"password", "client_credentials", "refresh_token"}
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = requests.get(document["jwks_uri"], timeout=10).json()["keys"]
    assert [key["kid"] for key in keys] == [key.kid for key in identity.keys.keys()]
    assert all(key["kty"] == "RSA" and "d" not in key for key in keys), "public parts only"


def _authlib_login(identity: Identity, username: str) -> dict:
    """What any OIDC client does: discovery, then the password grant at the token endpoint it names."""
    document = _discovery(identity)
    client = OAuth2Session(client_id="smartgrid", token_endpoint_auth_method="none")
    return client.fetch_token(document["token_endpoint"], username=username, password=PASSWORD,
                              grant_type="password")


async def test_an_outside_oidc_client_logs_in_and_the_token_verifies_with_the_jwks_alone(
    identity: Identity, new_user
) -> None:
    username = await new_user("operator")
    token = await asyncio.to_thread(_authlib_login, identity, username)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900 and token["refresh_token"]
    jwks = jwt.PyJWKClient(_discovery(identity)["jwks_uri"])
    signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token["access_token"])
    claims = jwt.decode(token["access_token"], signing_key.key, algorithms=["RS256"], audience="smartgrid",
                        issuer=identity.issuer)
    assert (claims["sub"], claims["roles"], claims["scope"], claims["smartgrid_kind"]) == (
        username, ["operator"], "operator", "user")
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    assert jwt.get_unverified_header(token["access_token"])["kid"] == identity.keys.signing_key().kid


async def test_client_credentials_for_devices_and_services_basic_or_form(users: UsersClient) -> None:
    device = f"s-{base64.b32encode(bytes(5)).decode()[:4]}-{id(users) % 10_000}"
    registered = (await users.register([{"device_id": device, "kind": "sensor"}]))[0]
    by_basic = await users.client_token(device, registered["client_secret"])
    claims = jwt.decode(by_basic["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["smartgrid_kind"], claims["device_kind"], claims["roles"]) == (
        device, "device", "sensor", ["device"])
    assert "refresh_token" not in by_basic
    async with users._session.post(f"{users.issuer}/token", data={  # client_secret_post
            "grant_type": "client_credentials", "client_id": device, "client_secret": registered["client_secret"]}) as r:
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    with pytest.raises(UsersApiError) as refused:
        await users.client_token(device, "wrong")
    assert (refused.value.status, refused.value.body["error"]) == (401, "invalid_client")
    await users.revoke(device)
    with pytest.raises(UsersApiError) as revoked:
        await users.client_token(device, registered["client_secret"])
    assert revoked.value.body["error"] == "invalid_client"


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "implicit"}, "unsupported_grant_type"),
    ({}, "invalid_request"),
    ({"grant_type": "password", "username": "nobody"}, "invalid_request"),
    ({"grant_type": "password", "username": "nobody", "password": "whatever-it-is", "client_id": "other"},
     "unauthorized_client"),
    ({"grant_type": "password", "username": "nobody", "password": "whatever-it-is"}, "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "made-up"}, "invalid_grant"),
    ({"grant_type": "client_credentials", "client_id": "nobody"}, "invalid_client"),
])
async def test_token_errors_are_rfc6749_json(users: UsersClient, form: dict[str, str], error: str) -> None:
    async with users._session.post(f"{users.issuer}/token", data=form) as response:
        body = await response.json()
        assert body["error"] == error and body["error_description"], body
        assert response.status == (401 if error == "invalid_client" else 400)
        assert response.headers["Cache-Control"] == "no-store"
    async with users._session.post(f"{users.issuer}/token", json={"grant_type": "password"}) as response:
        assert (response.status, (await response.json())["error"]) == (400, "invalid_request")


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_its_whole_session(
    users: UsersClient, new_user
) -> None:
    username = await new_user("viewer")
    first = await users.password_token(username, PASSWORD)

    async def refresh(token: str) -> tuple[int, dict]:
        async with users._session.post(f"{users.issuer}/token", data={
                "grant_type": "refresh_token", "refresh_token": token, "client_id": "smartgrid"}) as response:
            return response.status, await response.json()

    status, second = await refresh(first["refresh_token"])
    assert status == 200 and second["refresh_token"] != first["refresh_token"] and second["access_token"]
    status, third = await refresh(second["refresh_token"])
    assert status == 200
    status, reused = await refresh(first["refresh_token"])  # stolen and replayed
    assert (status, reused["error"]) == (400, "invalid_grant")
    status, after = await refresh(third["refresh_token"])
    assert (status, after["error"]) == (400, "invalid_grant"), "the family died with the reuse"
    page = await users.audit(actor=username, action="token.refresh")
    assert [(e["outcome"], e["detail"].get("reason")) for e in page["entries"]] == [
        ("success", None), ("success", None), ("failure", "reused"), ("failure", "revoked")]


async def test_revocation_ends_the_session(users: UsersClient, new_user) -> None:
    username = await new_user("analyst")
    token = await users.password_token(username, PASSWORD)
    async with users._session.post(f"{users.issuer}/revoke", data={
            "token": token["refresh_token"], "token_type_hint": "refresh_token"}) as response:
        assert response.status == 200
    async with users._session.post(f"{users.issuer}/revoke", data={"token": "never-issued"}) as response:
        assert response.status == 200, "RFC 7009: an unknown token is no error"
    async with users._session.post(f"{users.issuer}/token", data={
            "grant_type": "refresh_token", "refresh_token": token["refresh_token"]}) as response:
        assert (response.status, (await response.json())["error"]) == (400, "invalid_grant")
    page = await users.audit(actor=username, action="token.refresh")
    assert [e["detail"].get("reason") for e in page["entries"]] == ["revoked"]


@pytest.mark.parametrize(("password", "why"), [
    ("short-pw", "at least 12"), ("qwerty123456", "common"), ("LeaveMeAlone", "common"), ("x" * 129, "at most")])
async def test_the_password_policy_refuses_short_and_common_passwords(
    users: UsersClient, password: str, why: str
) -> None:
    with pytest.raises(UsersApiError) as refused:
        await users.create_user("policy-probe", "viewer", password)
    assert refused.value.status == 400 and refused.value.body["field"] == "password"
    assert why in refused.value.body["message"] and password not in refused.value.body["message"]


async def test_users_and_devices_are_managed_by_admins_only(identity: Identity, users: UsersClient, new_user) -> None:
    name = await new_user("viewer")
    assert (await users.update_user(name, role="operator"))["role"] == "operator"
    viewer = UsersClient(identity.issuer, identity.token(("viewer",), subject=name), users._session)
    for call in (viewer.users(), viewer.register([{"device_id": "x-1", "kind": "sensor"}]), viewer.audit()):
        with pytest.raises(UsersApiError) as refused:
            await call
        assert refused.value.status == 403
    with pytest.raises(UsersApiError) as taken:
        await users.create_user(name, "viewer", PASSWORD)
    assert (taken.value.status, taken.value.body["field"]) == (409, "username")
    with pytest.raises(UsersApiError) as bad_role:
        await users.create_user("someone-new", "root", PASSWORD)
    assert (bad_role.value.status, bad_role.value.body["field"]) == (400, "role")
    await users.update_user(name, disabled=True)
    with pytest.raises(UsersApiError) as disabled:
        await users.password_token(name, PASSWORD)
    assert disabled.value.body["error"] == "invalid_grant"


async def test_a_renewed_secret_replaces_the_old_one_at_once(users: UsersClient) -> None:
    gateway = f"gw-renew-{id(users) % 100_000}"
    registered = (await users.register([{"device_id": gateway, "kind": "gateway"},
                                        {"device_id": f"{gateway}-m1", "kind": "meter", "gateway_id": gateway}]))
    old = registered[0]["client_secret"]
    new = await users.new_secret(gateway)
    assert new != old and (await users.client_token(gateway, new))["access_token"]
    with pytest.raises(UsersApiError) as refused:
        await users.client_token(gateway, old)
    assert refused.value.body["error"] == "invalid_client"
    for device, status in ((f"{gateway}-m1", 409), ("never-registered", 404)):
        with pytest.raises(UsersApiError) as no_secret:
            await users.new_secret(device)
        assert (no_secret.value.status, no_secret.value.body["field"]) == (status, "device_id")
    actions = [e["action"] for e in (await users.audit(action="device.secret"))["entries"] if e["target"] == gateway]
    assert actions == ["device.secret"]
