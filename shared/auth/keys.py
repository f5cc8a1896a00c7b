"""Signing keys of the access tokens: RSA keys in a folder, published as a JWKS.

The folder (`SMARTGRID_AUTH_KEYS_DIR`; on a cluster a mounted Secret) holds PEM files named
`key-<UTC time>.pem`. The newest signs; every key in the folder is published at the JWKS, so after
`rotate` the previous key keeps verifying the tokens it signed until they expire (two keys at
once). A key's `kid` is its RFC 7638 JWK thumbprint. Files are written with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
KEY_BITS = 2048
KEEP = 2  # the signing key and the one before it


class SigningKeysMissing(FileNotFoundError):
    """Raised when the keys folder holds no key."""


@dataclass(frozen=True)
class SigningKey:
    """One RSA key: its `kid`, the private key and its public JWK."""

    kid: str
    private: rsa.RSAPrivateKey
    jwk: dict[str, Any]


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_jwk(private: rsa.RSAPrivateKey) -> dict[str, Any]:
    numbers = private.public_key().public_numbers()
    members = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": ALGORITHM}


def load_key(path: Path) -> SigningKey:
    """The key of one PEM file."""
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: expected an RSA private key, found {type(private).__name__}")
    jwk = _public_jwk(private)
    return SigningKey(jwk["kid"], private, jwk)


class KeyRing:
    """The keys of one folder, re-read when the folder changes (a rotation, a Secret update)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: tuple[tuple[str, float], ...] = ()
        self._keys: list[SigningKey] = []

    def keys(self) -> list[SigningKey]:
        """Every key, newest first; raises SigningKeysMissing when there is none."""
        files = sorted(self.folder.glob("key-*.pem"), reverse=True)
        seen = tuple((path.name, path.stat().st_mtime) for path in files)
        if seen != self._seen:
            self._keys, self._seen = [load_key(path) for path in files], seen
        if not self._keys:
            raise SigningKeysMissing(
                f"SMARTGRID_AUTH_KEYS_DIR: expected key-*.pem signing keys in {self.folder}, found none "
                "(`smartgrid auth rotate-key` makes one)")
        return self._keys

    def signing_key(self) -> SigningKey:
        """The newest key, which signs new tokens."""
        return self.keys()[0]

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set (RFC 7517)."""
        return {"keys": [key.jwk for key in self.keys()]}


def rotate(folder: Path, *, now: datetime | None = None) -> SigningKey:
    """Write a new signing key to `folder` (made 0700 when new) and remove all but the newest KEEP keys."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"key-{stamp}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    for old in sorted(folder.glob("key-*.pem"), reverse=True)[KEEP:]:
        old.unlink()
    return load_key(path)


def ensure_key(folder: Path) -> None:
    """Make a first signing key unless the folder holds one."""
    if not any(folder.glob("key-*.pem")):
        rotate(folder)
