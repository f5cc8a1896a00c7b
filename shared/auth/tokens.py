"""Access tokens: JWTs signed with the newest key of a KeyRing, verified against a JWKS.

Claims: `iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, `jti`, `roles`, `scope` (space separated), and
`smartgrid_kind` (user, device or service), `device_kind` for devices, `client_id`. Verification
accepts RS256 only (no `none`, no HMAC: a public key is never taken for a shared secret), requires
every registered claim and checks issuer, audience and times with `LEEWAY_S` of clock skew.

A device or service sends the same token with every request until it expires, so the verifier keeps
what it verified, by the token's exact text, for at most `cache_s` (60 s) and never past the token's
`exp`: a repeated token costs a dictionary lookup instead of the signature check (9x RSA's own cost in
PyJWT). A key dropped from the JWKS is therefore honoured for at most `cache_s` longer.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from shared.auth.keys import ALGORITHM, KeyRing
from shared.auth.principal import Principal

AUDIENCE = "smartgrid"
LEEWAY_S = 30
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]


class InvalidToken(ValueError):
    """Raised for a token that does not verify; the message says why (RFC 6750 `invalid_token`)."""


class KeysUnavailable(RuntimeError):
    """Raised when the JWKS could not be fetched: not the caller's fault, retry later (503)."""


@dataclass(frozen=True)
class TokenGrant:
    """What an access token says about its subject."""

    subject: str
    kind: str
    roles: tuple[str, ...]
    client_id: str
    device_kind: str | None = None


class TokenIssuer:
    """Signs access tokens for one issuer."""

    def __init__(self, keys: KeyRing, issuer: str, *, lifetime_s: int, audience: str = AUDIENCE) -> None:
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self._keys = keys
        self._audience = audience

    def issue(self, grant: TokenGrant, *, now: float | None = None) -> str:
        """A signed access token for `grant`, valid for `lifetime_s` from `now`."""
        issued = int(now if now is not None else time.time())
        key = self._keys.signing_key()
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self._audience, "sub": grant.subject, "iat": issued, "nbf": issued,
            "exp": issued + self.lifetime_s, "jti": str(uuid.uuid4()), "roles": list(grant.roles),
            "scope": " ".join(grant.roles), "smartgrid_kind": grant.kind, "client_id": grant.client_id,
        }
        if grant.device_kind is not None:
            claims["device_kind"] = grant.device_kind
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


KeyLookup = Callable[[str], Awaitable[Any]]


class TokenVerifier:
    """Verifies access tokens locally: signature by a key of the JWKS (found by `kid`), then claims; keeps
    verified tokens for `cache_s` (0: never), at most `cache_size` of them."""

    def __init__(self, key_for: KeyLookup, issuer: str, *, audience: str = AUDIENCE, cache_s: float = 60.0,
                 cache_size: int = 50_000) -> None:
        self.issuer = issuer
        self._key_for = key_for
        self._audience = audience
        self._cache_s = cache_s
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()  # token -> (valid until, who)

    async def verify(self, token: str) -> Principal:
        """The Principal of a valid token; raises InvalidToken naming what is wrong, KeysUnavailable."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and now < cached[0]:
            return cached[1]
        principal, expires = await self._verify(token)
        if self._cache_s > 0:
            self._verified[token] = (min(expires, now + self._cache_s), principal)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"expected a JWT, found one that does not parse: {error}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"expected alg {ALGORITHM}, found {header.get('alg')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("expected a kid in the token header, found none")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self._audience, issuer=self.issuer,
                                leeway=LEEWAY_S, options={"require": REQUIRED_CLAIMS})
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error) or type(error).__name__) from None
        return principal_of(claims), float(claims["exp"])


def principal_of(claims: dict[str, Any]) -> Principal:
    """The Principal of verified claims; raises InvalidToken when smartgrid's own claims are malformed."""
    roles, kind = claims.get("roles", []), claims.get("smartgrid_kind")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken(f"expected roles as a list of names, found {roles!r}")
    if kind not in ("user", "device", "service"):
        raise InvalidToken(f"expected smartgrid_kind user, device or service, found {kind!r}")
    return Principal(str(claims["sub"]), kind, frozenset(roles), claims.get("device_kind"))


def local_keys(keys: KeyRing) -> KeyLookup:
    """Key lookup straight from a KeyRing (the users service verifies with its own keys)."""

    async def key_for(kid: str) -> Any:
        for key in keys.keys():
            if key.kid == kid:
                return key.private.public_key()
        raise InvalidToken(f"expected a kid of the issuer's keys, found {kid!r}")

    return key_for
