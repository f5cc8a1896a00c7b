"""Edge rules of the gateway: security headers, conditional GET, and a cap on request bodies.

Header arguments are any mapping of field names to values (a dict, or aiohttp's CIMultiDict, whose
repeated fields all count); names compare case-insensitively.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import StreamReader, web
from multidict import CIMultiDict

HSTS = "max-age=31536000; includeSubDomains"
# RFC 9110 15.4.5: a 304 carries those of these fields a 200 would have carried.
NOT_MODIFIED_FIELDS = ("Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary")
_NOT_CACHEABLE = frozenset({"no-store", "private"})
_LIST_ITEM = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')  # a list element; commas may sit in quotes
_DIGITS = re.compile(r"[0-9]+")
_ENTITY_TAG = re.compile(r'[\s,]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?=,|$)')


def security_headers(tls: bool) -> dict[str, str]:
    """The fields every answer of the edge carries; Strict-Transport-Security only over TLS (RFC 6797
    7.2: a host sends it over secure transport only)."""
    fields = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
    if tls:
        fields["Strict-Transport-Security"] = HSTS
    return fields


# --- Conditional GET (RFC 9110 13.1.2, 13.2.2, 15.4.5) ---------------------------------------------------


def etag_of(body: bytes) -> str:
    """A strong entity tag of `body`: its SHA-256, base64url, quoted."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    return f'"{digest}"'


def not_modified(request_headers: Mapping[str, str], etag: str) -> bool:
    """True when the request's If-None-Match is false for a representation tagged `etag` (RFC 9110
    13.1.2): `*`, or a listed tag equal to `etag` by weak comparison (W/ prefixes ignored). False without
    the field, or when the field is malformed (ignored, so the full answer goes out)."""
    values = _values(request_headers, "if-none-match")
    if not values:
        return False
    field = ", ".join(values).strip()
    if field == "*":
        return True
    tags = _entity_tags(field)
    return tags is not None and _opaque(etag) in {_opaque(tag) for tag in tags}


def _entity_tags(field: str) -> list[str] | None:
    """The entity tags of a list field, None when the field is not such a list."""
    tags, position = [], 0
    while position < len(field):
        found = _ENTITY_TAG.match(field, position)
        if found is None:
            return None if field[position:].strip(" \t,") else tags
        tags.append((found.group(1) or "") + found.group(2))
        position = found.end()
    return tags


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def cacheable(response_headers: Mapping[str, str]) -> bool:
    """True unless the response's Cache-Control says no-store or private (qualified or not)."""
    directives = {item.group().split("=", 1)[0].strip().lower()
                  for value in _values(response_headers, "cache-control") for item in _LIST_ITEM.finditer(value)}
    return not directives & _NOT_CACHEABLE


@dataclass(frozen=True)
class GetAnswer:
    """What the gateway sends for a GET: the status, fields and body."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


def conditional_get(request_headers: Mapping[str, str], status: int, response_headers: Mapping[str, str],
                    body: bytes) -> GetAnswer:
    """The answer to a GET given the upstream's: a 200 whose Cache-Control allows caching gets an ETag
    (its own when it has one, else `etag_of(body)`), and when the request's If-None-Match matches that
    tag, becomes a 304 with no body keeping only NOT_MODIFIED_FIELDS. Any other answer goes out as is."""
    headers = CIMultiDict(response_headers)
    if status != 200 or not cacheable(headers):
        return GetAnswer(status, headers, body)
    etag = headers.get("ETag")
    if etag is None:
        etag = headers["ETag"] = etag_of(body)
    if not not_modified(request_headers, etag):
        return GetAnswer(status, headers, body)
    kept = CIMultiDict((name, value) for name, value in headers.items()
                       if name.lower() in {field.lower() for field in NOT_MODIFIED_FIELDS})
    return GetAnswer(304, kept, b"")


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of the field `name` (lower case) in `headers`."""
    return [value for key, value in headers.items() if key.lower() == name]


# --- Request body cap ---------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """Raised when a request body is over the limit: declared so (Content-Length), or `seen` bytes arrived."""

    def __init__(self, limit: int, seen: int, *, declared: bool = False) -> None:
        found = f"Content-Length {seen}" if declared else f"more ({seen} bytes arrived before reading stopped)"
        super().__init__(f"expected a body of at most {limit} bytes, found {found}")
        self.limit = limit
        self.seen = seen
        self.declared = declared


def check_content_length(headers: Mapping[str, str], limit: int) -> int | None:
    """The declared body length (None without Content-Length); raises BodyTooLarge at once when it is over
    `limit`, and ValueError when it is not one whole number (aiohttp's parser refuses those before)."""
    values = _values(headers, "content-length")
    if not values:
        return None
    if len(set(values)) != 1 or not _DIGITS.fullmatch(values[0].strip()):
        raise ValueError(f"Content-Length: expected one whole number of bytes, found {', '.join(values)!r}")
    declared = int(values[0])
    if declared > limit:
        raise BodyTooLarge(limit, declared, declared=True)
    return declared


async def read_capped(stream: StreamReader, limit: int) -> bytes:
    """The whole body of `stream` (aiohttp's `request.content`); raises BodyTooLarge as soon as more than
    `limit` bytes arrived, leaving the rest unread (what arrived counts, up to one buffer beyond `limit`)."""
    parts: list[bytes] = []
    seen = 0
    while chunk := await stream.readany():
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge(limit, seen)
        parts.append(chunk)
    return b"".join(parts)


async def refuse_too_large(request: web.BaseRequest, error: BodyTooLarge) -> web.StreamResponse:
    """Send the 413 of `error` and close the connection right after it. Without the close, aiohttp reads
    and discards the rest of an unread body for up to its `lingering_time` (10 s by default), which a
    client that keeps sending turns into gigabytes."""
    response = web.json_response({"error": "body too large", "message": str(error), "field": "body",
                                  "limit": error.limit}, status=413)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response
