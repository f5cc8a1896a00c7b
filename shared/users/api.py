"""The users service's HTTP interface: OpenID Connect discovery, JWKS, token and revocation endpoints,
and the admin APIs of users, devices and the audit log.

| method | path                                              | who          | answer                              |
|--------|---------------------------------------------------|--------------|-------------------------------------|
| GET    | /api/v1/auth/.well-known/openid-configuration     | anyone       | OIDC discovery document             |
| GET    | /api/v1/auth/jwks                                 | anyone       | the signing keys (JWK Set)          |
| POST   | /api/v1/auth/token                                | OAuth client | RFC 6749 token response             |
| POST   | /api/v1/auth/revoke                               | OAuth client | RFC 7009 (200, also for unknown)    |
| GET    | /api/v1/users · POST (create)                     | admin        | users / the new user (201)          |
| GET    | /api/v1/users/{name} · PATCH · DELETE             | admin        | one user / changed / 204            |
| GET    | /api/v1/devices?kind=&gateway= · POST (register)  | admin        | devices / registered, secrets once  |
| GET    | /api/v1/devices/{id}                              | admin, registry-reader | one device (a gateway: its meters) |
| DELETE | /api/v1/devices/{id}                              | admin        | the revoked device                  |
| POST   | /api/v1/devices/{id}/secret                       | admin        | a new client secret, shown once     |
| GET    | /api/v1/audit?actor=&action=&from=&to=&limit=&after= | admin     | `{"entries": [...], "next": seq}`   |
| POST   | /                                                 | eventing     | an audit event, appended to the log |

Answers of the auth endpoints carry `Cache-Control: no-store`. Errors: RFC 6749 JSON on the auth
endpoints; elsewhere JSON naming the field (400, 404, 409), 401/403 from the guard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.audit.log import AuditLog, AuditQuery
from shared.auth.guard import Guard
from shared.auth.keys import ALGORITHM, KeyRing
from shared.http import downstream_failure, json_error
from shared.params import BadParameter, time_param
from shared.routing import Routes
from shared.users.accounts import Accounts
from shared.users.devices import Devices
from shared.users.errors import OAuthError, UsersError
from shared.users.oauth import GRANT_TYPES, TokenEndpoint

AUTH_PREFIX = "/api/v1/auth"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_AUDIT_PAGE = 1000
Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`value` as JSON (datetimes RFC 3339)."""
    return Response(orjson.dumps(value, option=orjson.OPT_UTC_Z), status_code=status, media_type="application/json",
                    headers=headers)


def discovery(issuer: str) -> dict[str, Any]:
    """The OpenID Connect discovery document of `issuer` (OpenID Connect Discovery 1.0 section 3)."""
    return {
        "issuer": issuer, "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke", "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["token"], "subject_types_supported": ["public"],
        "scopes_supported": ["admin", "operator", "analyst", "viewer", "device"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "roles", "scope", "client_id",
                             "smartgrid_kind", "device_kind"],
    }


class UsersApi:
    """Answers every request of the users service (see the module's table)."""

    def __init__(self, *, issuer: str, keys: KeyRing, tokens: TokenEndpoint, accounts: Accounts, devices: Devices,
                 audit: AuditLog, guard: Guard, receive_event: Endpoint, address_header: str | None = None) -> None:
        self._issuer = issuer
        self._address_header = address_header
        self._keys = keys
        self._tokens = tokens
        self._accounts = accounts
        self._devices = devices
        self._audit = audit
        admin = guard.protect
        self._routes = Routes([
            Route(f"{AUTH_PREFIX}/.well-known/openid-configuration", self._discovery, methods=["GET"]),
            Route(f"{AUTH_PREFIX}/jwks", self._jwks, methods=["GET"]),
            Route(f"{AUTH_PREFIX}/token", self._token, methods=["POST"]),
            Route(f"{AUTH_PREFIX}/revoke", self._revoke, methods=["POST"]),
            Route("/api/v1/users", admin(_answering(self._list_users)), methods=["GET"]),
            Route("/api/v1/users", admin(_answering(self._create_user)), methods=["POST"]),
            Route("/api/v1/users/{name}", admin(_answering(self._get_user)), methods=["GET"]),
            Route("/api/v1/users/{name}", admin(_answering(self._update_user)), methods=["PATCH"]),
            Route("/api/v1/users/{name}", admin(_answering(self._delete_user)), methods=["DELETE"]),
            Route("/api/v1/devices", admin(_answering(self._list_devices)), methods=["GET"]),
            Route("/api/v1/devices", admin(_answering(self._register_devices)), methods=["POST"]),
            Route("/api/v1/devices/{id}", admin(_answering(self._get_device)), methods=["GET"]),
            Route("/api/v1/devices/{id}", admin(_answering(self._revoke_device)), methods=["DELETE"]),
            Route("/api/v1/devices/{id}/secret", admin(_answering(self._renew_secret)), methods=["POST"]),
            Route("/api/v1/audit", admin(_answering(self._audit_page)), methods=["GET"]),
            Route("/", receive_event, methods=["POST"]),
        ])

    async def __call__(self, request: Request) -> Response:
        """Route one request."""
        return await self._routes(request)

    async def _discovery(self, _request: Request) -> Response:
        return json_response(discovery(self._issuer), headers={"Cache-Control": "max-age=300"})

    async def _jwks(self, _request: Request) -> Response:
        return json_response(self._keys.jwks(), headers={"Cache-Control": "max-age=60"})

    async def _token(self, request: Request) -> Response:
        return await _oauth(request, lambda form: self._tokens.token(
            form, request.headers.get("authorization"), self._client_address(request)))

    def _client_address(self, request: Request) -> str:
        """The caller's address for the lockout: the trusted proxy's header when configured (behind a proxy
        every peer is the proxy), else the peer's address."""
        if self._address_header is not None:
            forwarded = request.headers.get(self._address_header)
            if forwarded:
                return forwarded.split(",")[-1].strip()
        return request.client.host if request.client else "unknown"

    async def _revoke(self, request: Request) -> Response:
        async def revoke(form: dict[str, str]) -> dict[str, Any]:
            await self._tokens.revoke(form, request.headers.get("authorization"))
            return {}
        return await _oauth(request, revoke)

    async def _list_users(self, _request: Request) -> Any:
        return {"users": await self._accounts.list()}

    async def _create_user(self, request: Request) -> Any:
        body = await _json_object(request)
        user = await self._accounts.create(body.get("username"), body.get("role"), body.get("password"),
                                           actor=_actor(request))
        return 201, user

    async def _get_user(self, request: Request) -> Any:
        return await self._accounts.get(request.path_params["name"])

    async def _update_user(self, request: Request) -> Any:
        return await self._accounts.update(request.path_params["name"], await _json_object(request),
                                           actor=_actor(request))

    async def _delete_user(self, request: Request) -> Any:
        await self._accounts.delete(request.path_params["name"], actor=_actor(request))
        return 204, None

    async def _list_devices(self, request: Request) -> Any:
        params = request.query_params
        return {"devices": await self._devices.list(kind=params.get("kind"), gateway_id=params.get("gateway"))}

    async def _register_devices(self, request: Request) -> Any:
        body = await _json_object(request)
        many = "devices" in body
        specs = body["devices"] if many else [body]
        if not isinstance(specs, list):
            raise UsersError("devices", f"expected a list of devices, found {type(specs).__name__}")
        registered = await self._devices.register(specs, actor=_actor(request))
        return 201, ({"devices": registered} if many else registered[0])

    async def _get_device(self, request: Request) -> Any:
        return await self._devices.get(request.path_params["id"])

    async def _revoke_device(self, request: Request) -> Any:
        return await self._devices.revoke(request.path_params["id"], actor=_actor(request))

    async def _renew_secret(self, request: Request) -> Any:
        return await self._devices.renew_secret(request.path_params["id"], actor=_actor(request))

    async def _audit_page(self, request: Request) -> Any:
        params = request.query_params
        after, limit = params.get("after", "0"), params.get("limit", "100")
        if not after.isdigit():
            raise BadParameter("after", f"expected the `next` of the previous page, found {after!r}")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_AUDIT_PAGE:
            raise BadParameter("limit", f"expected a whole number from 1 to {MAX_AUDIT_PAGE}, found {limit!r}")
        query = AuditQuery(actor=params.get("actor"), action=params.get("action"), since=time_param(params, "from"),
                           until=time_param(params, "to"), after_seq=int(after), limit=int(limit))
        entries = await self._audit.page(query)
        full = len(entries) == query.limit
        return {"entries": entries, "next": str(entries[-1]["seq"]) if full else None}


def _answering(handle: Callable[[Request], Awaitable[Any]]) -> Endpoint:
    """An endpoint answering `handle`'s value as JSON ((status, value) for another status than 200), and
    the users errors as JSON naming the field."""

    async def endpoint(request: Request) -> Response:
        try:
            answer = await handle(request)
        except UsersError as error:
            return json_error(error.status, error.error, str(error), field=error.field)
        except BadParameter as error:
            return json_error(400, "bad request", str(error), field=error.field)
        except Exception as error:
            return _unavailable(error, request)
        status, value = answer if isinstance(answer, tuple) else (200, answer)
        return Response(status_code=204) if status == 204 else json_response(value, status, NO_STORE)

    return endpoint


async def _oauth(request: Request, handle: Callable[[dict[str, str]], Awaitable[dict[str, Any]]]) -> Response:
    """Parse the form, run `handle`, answer with no-store; OAuthError as RFC 6749 section 5.2 JSON."""
    try:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "expected Content-Type application/x-www-form-urlencoded, found "
                                                f"{request.headers.get('content-type')!r}")
        try:
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "expected an UTF-8 form body") from None
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # RFC 6749 3.1: request parameters MUST NOT be included more than once
            raise OAuthError("invalid_request", f"expected each parameter once, found {repeated[0]} repeated")
        return json_response(await handle(dict(pairs)), headers=NO_STORE)
    except OAuthError as error:
        headers = dict(NO_STORE)
        if error.status == 401 and (request.headers.get("authorization") or "").lower().startswith("basic"):
            headers["WWW-Authenticate"] = 'Basic realm="smartgrid"'
        return json_response({"error": error.error, "error_description": error.description}, error.status, headers)
    except Exception as error:
        return _unavailable(error, request)


def _unavailable(error: Exception, request: Request) -> Response:
    """503 (or 422) for a failing database; anything else is a bug and raised."""
    answer = downstream_failure(error, path=request.url.path)
    if answer is None:
        raise error
    return answer


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise UsersError("body", "expected a JSON object, found invalid JSON") from None
    if not isinstance(body, dict):
        raise UsersError("body", f"expected a JSON object, found {type(body).__name__}")
    return body


def _actor(request: Request) -> str:
    return request.state.principal.subject
