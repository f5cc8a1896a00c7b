"""Webhook signatures: HMAC-SHA256 over `<unix time>.<body>`, sent as `X-Smartgrid-Signature: t=<unix>,v1=<hex>`.

The timestamp is part of what is signed, so a captured request cannot be replayed after the
receiver's tolerance has passed, and no byte of the body can change without the signature failing.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Smartgrid-Signature"
DEFAULT_TOLERANCE_S = 300.0


class InvalidSignature(ValueError):
    """Raised when a signature header is missing, malformed, stale or does not match the body."""


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> str:
    """The `X-Smartgrid-Signature` header value for `body`, signed at `now` (default: the current time)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str, body: bytes, header: str | None, *, tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None
) -> int:
    """Check a signature header against `body`; return its timestamp or raise InvalidSignature."""
    if not header:
        raise InvalidSignature(f"expected a {SIGNATURE_HEADER} header, found none")
    parts = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(parts["t"])
        claimed = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature(f"expected t=<unix time>,v1=<hex>, found {header[:100]!r}") from None
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise InvalidSignature(f"expected a signature at most {tolerance_s:.0f} s old, found one {age:.0f} s old")
    if not hmac.compare_digest(claimed, signature(secret, body, timestamp)):
        raise InvalidSignature("expected the HMAC-SHA256 of the body under the shared secret, found another value")
    return timestamp
