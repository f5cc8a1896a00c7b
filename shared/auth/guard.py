"""The one piece of middleware every function's API goes through: Bearer token, then the role matrix.

`Guard.protect(handler)` answers, before the handler runs:
- 401 with `WWW-Authenticate: Bearer realm="smartgrid"` when no token is sent, and with
  `error="invalid_token"` (RFC 6750 3.1) when the token does not verify (each refusal is audited);
- 403 `insufficient_scope` when no rule of the matrix (shared/auth/policy.py) lets the caller's
  roles call the method on the path;
- 503 when the issuer's keys cannot be fetched (retry later).
Otherwise the handler runs with `request.state.principal` set to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.audit.chain import AuditEntry
from shared.auth.jwks import RemoteJwks
from shared.auth.policy import RULES, Rule, allowed_roles
from shared.auth.principal import Principal
from shared.auth.tokens import InvalidToken, KeysUnavailable, TokenVerifier
from shared.config import Settings

log = logging.getLogger("smartgrid.auth")

Handler = Callable[[Request], Awaitable[Response]]
Refusal = Callable[[AuditEntry], None]
REALM = "smartgrid"


class AccessRefused(Exception):
    """A request refused before it reached the handler: the status, RFC 6750 error, message and the field
    at fault (`authorization` unless the request's content is)."""

    def __init__(self, status: int, error: str, message: str, field: str = "authorization") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.field = field

    def response(self) -> Response:
        """The JSON answer, naming the field, with the RFC 6750 challenge."""
        challenge = f'Bearer realm="{REALM}"'
        if self.error != "unauthorized":
            description = str(self).replace('"', "'")
            challenge += f', error="{self.error}", error_description="{description}"'
        headers = {"WWW-Authenticate": challenge} if self.status in (401, 403) else {}
        body = {"error": self.error, "message": str(self), "field": self.field}
        return JSONResponse(body, status_code=self.status, headers=headers)


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer <token>`; raises AccessRefused 401 without one."""
    header = request.headers.get("authorization")
    if header is None:
        raise AccessRefused(401, "unauthorized", "expected Authorization: Bearer <token>, found none")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessRefused(401, "invalid_token", f"expected the Bearer scheme with a token, found {scheme!r}")
    return token.strip()


class Guard:
    """Authenticates callers with a TokenVerifier and authorises them with the rules."""

    def __init__(self, verifier: TokenVerifier, rules: tuple[Rule, ...] = RULES, *, source: str,
                 on_refused: Refusal | None = None) -> None:
        self.verifier = verifier
        self._rules = rules
        self._source = source
        self._on_refused = on_refused

    async def authenticate(self, request: Request) -> Principal:
        """The verified caller; raises AccessRefused (401, 503). Invalid tokens are audited."""
        token = bearer_token(request)
        try:
            return await self.verifier.verify(token)
        except InvalidToken as error:
            self._refused(request, "token.rejected", str(error))
            raise AccessRefused(401, "invalid_token", str(error)) from None
        except KeysUnavailable as error:
            log.warning("%s", error)
            raise AccessRefused(503, "temporarily_unavailable", str(error)) from None

    def authorize(self, principal: Principal, request: Request) -> None:
        """Raise AccessRefused 403 unless a rule lets `principal` call this method and path."""
        method, path = request.method, request.url.path.rstrip("/") or "/"
        roles = allowed_roles(method, path, self._rules)
        if not principal.has_any(roles):
            self._refused(request, "access.denied", f"{principal.kind} roles {sorted(principal.roles)}",
                          actor=principal.subject)
            expected = ", ".join(sorted(roles)) or "none (no rule allows it)"
            raise AccessRefused(403, "insufficient_scope", f"expected a role among {expected} for {method} {path}, "
                                                           f"found {', '.join(sorted(principal.roles)) or 'none'}")

    def protect(self, handler: Handler) -> Handler:
        """`handler` behind authentication and authorisation."""

        async def guarded(request: Request) -> Response:
            try:
                principal = await self.authenticate(request)
                self.authorize(principal, request)
            except AccessRefused as refused:
                return refused.response()
            request.state.principal = principal
            return await handler(request)

        return guarded

    def _refused(self, request: Request, action: str, reason: str, *, actor: str = "anonymous") -> None:
        if self._on_refused is None:
            return
        address = request.client.host if request.client else "unknown"
        self._on_refused(AuditEntry(actor, action, "failure", self._source,
                                    f"{request.method} {request.url.path}", {"reason": reason, "address": address}))


def verifier_from_settings(settings: Settings) -> TokenVerifier:
    """A verifier of SMARTGRID_AUTH_ISSUER's tokens with keys from its JWKS (SMARTGRID_AUTH_JWKS_URL)."""
    return TokenVerifier(RemoteJwks(settings.jwks_url()).key_for, settings.require_issuer())
