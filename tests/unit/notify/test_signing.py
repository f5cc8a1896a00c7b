"""Webhook signatures: what is signed, how long a signature holds, and that any change breaks it."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from shared.notify.signing import InvalidSignature, sign, signature, verify

SECRET = "s3cret"
BODY = b'{"alert_id": "a-1", "severity": "critical"}'
NOW = 1_800_000_000.0


def test_a_signature_verifies_and_names_its_time() -> None:
    header = sign(SECRET, BODY, now=NOW)
    assert header == f"t={int(NOW)},v1={signature(SECRET, BODY, int(NOW))}"
    assert verify(SECRET, BODY, header, now=NOW + 10) == int(NOW)


def test_the_signed_text_is_time_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{int(NOW)}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, int(NOW)) == expected


@pytest.mark.parametrize("age", [299.0, -299.0])
def test_within_the_tolerance_either_way(age: float) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, now=NOW), now=NOW + age, tolerance_s=300)


@pytest.mark.parametrize("age", [301.0, -301.0])
def test_outside_the_tolerance_a_signature_is_refused(age: float) -> None:
    with pytest.raises(InvalidSignature, match="at most 300 s old"):
        verify(SECRET, BODY, sign(SECRET, BODY, now=NOW), now=NOW + age, tolerance_s=300)


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        pytest.param(SECRET, BODY.replace(b"critical", b"info"), None, id="tampered-body"),
        pytest.param("other", BODY, None, id="wrong-secret"),
        pytest.param(SECRET, BODY, f"t={int(NOW) + 1},v1={signature(SECRET, BODY, int(NOW))}", id="changed-time"),
    ],
)
def test_any_change_breaks_the_signature(secret: str, body: bytes, header: str | None) -> None:
    with pytest.raises(InvalidSignature, match="expected the HMAC-SHA256"):
        verify(secret, body, header or sign(SECRET, BODY, now=NOW), now=NOW)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "expected a X-Smartgrid-Signature header, found none"),
        ("", "expected a X-Smartgrid-Signature header, found none"),
        ("v1=abc", "expected t=<unix time>,v1=<hex>"),
        ("t=soon,v1=abc", "expected t=<unix time>,v1=<hex>"),
        (f"t={int(NOW)}", "expected t=<unix time>,v1=<hex>"),
    ],
)
def test_a_missing_or_malformed_header_is_refused(header: str | None, message: str) -> None:
    with pytest.raises(InvalidSignature, match=re.escape(message)):
        verify(SECRET, BODY, header, now=NOW)
