"""Access tokens: issued and verified in process, every forged kind refused with its reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shared.auth.keys import KeyRing, ensure_key, rotate
from shared.auth.tokens import (
    InvalidToken,
    TokenGrant,
    TokenIssuer,
    TokenVerifier,
    local_keys,
)
from tests.identity import Identity, forged_tokens

ISSUER = "http://issuer.test/api/v1/auth"


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    ensure_key(tmp_path)
    return Identity(ISSUER, KeyRing(tmp_path), {})


async def test_an_issued_token_verifies_to_its_principal(identity: Identity) -> None:
    token = TokenIssuer(identity.keys, ISSUER, lifetime_s=900).issue(
        TokenGrant("gw-1", "device", ("device",), "gw-1", "gateway"))
    principal = await TokenVerifier(local_keys(identity.keys), ISSUER).verify(token)
    assert (principal.subject, principal.kind, principal.roles, principal.device_kind) == (
        "gw-1", "device", frozenset({"device"}), "gateway")


REASONS = {
    "alg-none": "expected alg RS256, found 'none'",
    "hs256-with-the-public-key": "expected alg RS256, found 'HS256'",
    "expired": "expired",
    "not-yet-valid": "not yet valid",
    "wrong-issuer": "issuer",
    "wrong-audience": "audience",
    "tampered-payload": "Signature verification failed",
    "unknown-kid": "expected a kid of the issuer's keys, found 'made-up-kid'",
    "known-kid-other-key": "Signature verification failed",
    "garbage": "expected a JWT",
}


@pytest.mark.parametrize("name", sorted(REASONS))
async def test_forged_tokens_are_refused_naming_why(identity: Identity, name: str) -> None:
    with pytest.raises(InvalidToken) as refused:
        await TokenVerifier(local_keys(identity.keys), ISSUER).verify(forged_tokens(identity)[name])
    assert REASONS[name].lower() in str(refused.value).lower()


async def test_after_rotation_both_keys_verify_and_the_new_one_signs(identity: Identity) -> None:
    issuer = TokenIssuer(identity.keys, ISSUER, lifetime_s=900)
    grant = TokenGrant("alice", "user", ("viewer",), "smartgrid")
    before = issuer.issue(grant)
    old_kid = identity.keys.signing_key().kid
    new = rotate(identity.keys.folder)
    assert [key.kid for key in identity.keys.keys()] == [new.kid, old_kid]
    assert [key["kid"] for key in identity.keys.jwks()["keys"]] == [new.kid, old_kid]
    verifier = TokenVerifier(local_keys(identity.keys), ISSUER)
    assert (await verifier.verify(before)).subject == "alice"
    assert (await verifier.verify(issuer.issue(grant))).subject == "alice"
    rotate(identity.keys.folder)
    assert (await verifier.verify(before)).subject == "alice", "verified before: kept for at most cache_s"
    with pytest.raises(InvalidToken):  # two rotations later its key is no longer published
        await TokenVerifier(local_keys(identity.keys), ISSUER, cache_s=0).verify(before)


async def test_a_verified_token_is_kept_until_its_expiry_at_most(identity: Identity) -> None:
    token = TokenIssuer(identity.keys, ISSUER, lifetime_s=2).issue(TokenGrant("d-1", "device", ("device",), "d-1"))
    calls = []

    async def counting(kid: str):
        calls.append(kid)
        return await local_keys(identity.keys)(kid)

    verifier = TokenVerifier(counting, ISSUER, cache_s=0.3)
    for _ in range(3):
        assert (await verifier.verify(token)).subject == "d-1"
    assert len(calls) == 1, "one signature check for repeated requests"
    await asyncio.sleep(0.35)
    await verifier.verify(token)
    assert len(calls) == 2, "checked again once its cache time is over"
