"""Passwords: the policy a new password must meet, and argon2id hashing.

Policy (NIST SP 800-63B 3.1.1.2): at least MIN_LENGTH characters, at most MAX_LENGTH, and not one
of the 30,000 most common passwords (the list shipped with the `zxcvbn` package), compared without
case. No composition rules.

Hashing: argon2id with OWASP's recommended minimum (m = 19 MiB, t = 2, p = 1; Password Storage
Cheat Sheet), `PASSWORD_HASHER` below. Secrets of devices and services are 256-bit random values,
hashed with SHA-256: they cannot be guessed, so a slow hash would only slow every token request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
PASSWORD_HASHER = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                                  parallelism=ARGON2_PARALLELISM, type=Type.ID)
# Verified when a login names no user, so that an unknown name costs as long as a wrong password.
_DECOY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


class WeakPassword(ValueError):
    """Raised for a password the policy refuses; says why (never echoes the password)."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The common passwords, lowercased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def check_policy(password: str) -> None:
    """Raise WeakPassword unless `password` meets the policy."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"expected at least {MIN_LENGTH} characters, found {len(password)}")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"expected at most {MAX_LENGTH} characters, found {len(password)}")
    if password.lower() in common_passwords():
        raise WeakPassword("expected a password that is not among the most common ones, found a common one")


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of a password."""
    return PASSWORD_HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; a missing hash costs the same time and fails."""
    try:
        return PASSWORD_HASHER.verify(stored_hash or _DECOY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    """A client secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a client secret or refresh token (SHA-256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """Constant-time comparison of a secret with its stored hash."""
    return stored_hash is not None and hmac.compare_digest(stored_hash, hash_secret(secret))
