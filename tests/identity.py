"""Tokens for the tests: the session's own users service (the real function) and tokens signed with its keys.

Functions started on their own get `Identity.env` (issuer, their OAuth client) and are called with
`Identity.headers(...)`: a token minted with the users service's signing key, the same form the token
endpoint issues (tests of the token endpoint itself go through it: tests/integration/identity/).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.keys import KeyRing
from shared.auth.tokens import AUDIENCE, TokenGrant, TokenIssuer

FUNCTION_CLIENT = "function-test"
ADMIN_CLIENT = "test-admin"
EVENTING_CLIENT = "knative-eventing"


@dataclass(frozen=True)
class Identity:
    """The session's issuer, its keys and its service clients' secrets."""

    issuer: str
    keys: KeyRing
    secrets: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        """What a function started by a test needs: the issuer and a registry-reader client."""
        return {"SMARTGRID_AUTH_ISSUER": self.issuer, "SMARTGRID_CLIENT_ID": FUNCTION_CLIENT,
                "SMARTGRID_CLIENT_SECRET": self.secrets[FUNCTION_CLIENT]}

    def token(self, roles: Iterable[str], *, subject: str = "tester", kind: str = "user",
              device_kind: str | None = None, lifetime_s: int = 900) -> str:
        """An access token of this issuer."""
        issuer = TokenIssuer(self.keys, self.issuer, lifetime_s=lifetime_s)
        return issuer.issue(TokenGrant(subject, kind, tuple(roles), "tests", device_kind))

    def headers(self, *roles: str, subject: str = "tester", kind: str = "user") -> dict[str, str]:
        """`Authorization: Bearer` with a token of `roles`."""
        return {"Authorization": f"Bearer {self.token(roles, subject=subject, kind=kind)}"}

    @property
    def delivery(self) -> dict[str, str]:
        """The data plane's `Authorization` header for event deliveries."""
        return self.headers("eventing", subject=EVENTING_CLIENT, kind="service")

    def device(self, device_id: str, device_kind: str) -> dict[str, str]:
        """A device's `Authorization` header."""
        token = self.token(("device",), subject=device_id, kind="device", device_kind=device_kind)
        return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Endpoint:
    """A function's URL and the `Authorization` header its callers send."""

    url: str
    headers: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def forged_tokens(identity: Identity, *, subject: str = "mallory") -> dict[str, str]:
    """Tokens an attacker could present, each of which must be refused: name -> token."""
    now = int(time.time())
    key = identity.keys.signing_key()
    claims = {"iss": identity.issuer, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now, "exp": now + 600,
              "jti": "forged", "roles": ["admin"], "scope": "admin", "smartgrid_kind": "user", "client_id": "smartgrid"}

    def signed(changes: dict, *, private: rsa.RSAPrivateKey = key.private, kid: str = key.kid) -> str:
        return jwt.encode({**claims, **changes}, private, algorithm="RS256", headers={"kid": kid})

    public_pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    hs256 = _unsigned({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims)
    genuine = signed({"roles": ["viewer"], "scope": "viewer"})
    head, _, signature = genuine.split(".")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "alg-none": _unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims) + ".",
        "hs256-with-the-public-key": f"{hs256}.{_b64(hmac.new(public_pem, hs256.encode(), hashlib.sha256).digest())}",
        "expired": signed({"iat": now - 3600, "nbf": now - 3600, "exp": now - 1800}),
        "not-yet-valid": signed({"nbf": now + 1800, "exp": now + 3600}),
        "wrong-issuer": signed({"iss": "https://idp.example.com/realms/other"}),
        "wrong-audience": signed({"aud": "another-api"}),
        "tampered-payload": f"{head}.{_b64(json.dumps(claims).encode())}.{signature}",
        "unknown-kid": signed({}, private=stranger, kid="made-up-kid"),
        "known-kid-other-key": signed({}, private=stranger),
        "garbage": "not.a.jwt",
    }
