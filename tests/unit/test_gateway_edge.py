"""The gateway's edge rules that need no network: security headers, conditional GET, declared lengths."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from local.gateway.edge import (
    BodyTooLarge,
    cacheable,
    check_content_length,
    conditional_get,
    etag_of,
    not_modified,
    security_headers,
)

BODY = b'{"energy_kwh": [1.5, 2.25]}'


def test_security_headers_send_hsts_only_over_tls() -> None:
    plain = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
    assert security_headers(False) == plain
    assert security_headers(True) == {**plain, "Strict-Transport-Security": "max-age=31536000; includeSubDomains"}


def test_the_etag_is_strong_quoted_and_follows_the_body() -> None:
    tag = etag_of(BODY)
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert tag == etag_of(bytes(BODY)) and tag != etag_of(BODY + b" ")
    assert '"' not in tag[1:-1] and len(tag) > 20


@pytest.mark.parametrize(("field", "expected"), [
    (None, False),
    ("*", True),
    ('"x"', True),
    ('W/"x"', True),  # weak comparison: the W/ does not matter
    ('"a", "b" ,W/"x"', True),
    ('"a","b"', False),
    ('"a,b", "x"', True),  # a comma inside a tag is part of it
    ('"a,x"', False),
    (', "x",', True),  # empty list elements are allowed
    ('"x" junk', False),  # malformed: ignored
    ('x', False),
    ('*, "x"', False),
    ('w/"x"', False),  # W is upper case
])
def test_if_none_match(field: str | None, expected: bool) -> None:
    request = {} if field is None else {"If-None-Match": field}
    assert not_modified(request, '"x"') is expected


def test_if_none_match_in_several_lines_and_any_case() -> None:
    request = CIMultiDict([("if-none-match", '"a"'), ("IF-NONE-MATCH", '"x"')])
    assert not_modified(request, '"x"') and not_modified({"if-none-match": '"x"'}, 'W/"x"')


@pytest.mark.parametrize(("cache_control", "expected"), [
    (None, True), ("max-age=300", True), ("no-cache", True), ("public, max-age=60", True),
    ("no-store", False), ("private", False), ('private="set-cookie", max-age=60', False),
    ("max-age=60, No-Store", False), ('community="no-store, private"', True),
])
def test_cacheable(cache_control: str | None, expected: bool) -> None:
    assert cacheable({} if cache_control is None else {"Cache-Control": cache_control}) is expected


UPSTREAM = {"Content-Type": "application/json", "Content-Length": str(len(BODY)), "Cache-Control": "max-age=300",
            "Vary": "Authorization", "Date": "Sat, 21 Nov 2026 06:00:00 GMT", "X-Request-Id": "r-1"}


def test_a_cacheable_200_gets_an_etag() -> None:
    answer = conditional_get({}, 200, UPSTREAM, BODY)
    assert (answer.status, answer.body) == (200, BODY)
    assert answer.headers["ETag"] == etag_of(BODY) and answer.headers["X-Request-Id"] == "r-1"


def test_a_matching_if_none_match_gets_a_bodiless_304_with_the_validator_fields() -> None:
    answer = conditional_get({"If-None-Match": etag_of(BODY)}, 200, UPSTREAM, BODY)
    assert (answer.status, answer.body) == (304, b"")
    assert dict(answer.headers) == {"Cache-Control": "max-age=300", "Vary": "Authorization",
                                    "Date": "Sat, 21 Nov 2026 06:00:00 GMT", "ETag": etag_of(BODY)}


def test_the_upstreams_own_etag_is_kept_and_compared() -> None:
    upstream = {**UPSTREAM, "etag": 'W/"v7"'}
    assert conditional_get({}, 200, upstream, BODY).headers.getall("ETag") == ['W/"v7"']
    assert conditional_get({"If-None-Match": '"v7"'}, 200, upstream, BODY).status == 304
    assert conditional_get({"If-None-Match": etag_of(BODY)}, 200, upstream, BODY).status == 200


@pytest.mark.parametrize(("status", "cache_control"), [(200, "no-store"), (200, "private, max-age=60"),
                                                       (201, "max-age=60"), (404, "max-age=60")])
def test_other_answers_go_out_unchanged(status: int, cache_control: str) -> None:
    upstream = {**UPSTREAM, "Cache-Control": cache_control}
    answer = conditional_get({"If-None-Match": "*"}, status, upstream, BODY)
    assert (answer.status, answer.body, dict(answer.headers)) == (status, BODY, upstream)


def test_repeated_response_fields_survive() -> None:
    upstream = CIMultiDict([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Cache-Control", "max-age=5")])
    assert conditional_get({}, 200, upstream, BODY).headers.getall("Set-Cookie") == ["a=1", "b=2"]


def test_a_declared_length_over_the_limit_is_refused_at_once() -> None:
    assert check_content_length({}, 10) is None
    assert check_content_length({"content-length": "10"}, 10) == 10
    with pytest.raises(BodyTooLarge, match="expected a body of at most 10 bytes, found Content-Length 11") as raised:
        check_content_length({"Content-Length": "11"}, 10)
    assert (raised.value.limit, raised.value.seen, raised.value.declared) == (10, 11, True)


@pytest.mark.parametrize("value", ["ten", "-1", "1e3", "²"])
def test_a_malformed_content_length_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="Content-Length: expected one whole number of bytes"):
        check_content_length({"Content-Length": value}, 10)
