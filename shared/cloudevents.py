"""CloudEvents 1.0: one event type and its HTTP and Kafka protocol bindings.

`CloudEvent` holds the context attributes (extensions included) as strings and the
data as bytes, exactly as they travel; nothing is decoded that nobody asked for.
Every parse error is an `InvalidEvent` that names the offending field.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

import orjson

SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
PING_EVENT_TYPE = "dev.knative.sources.ping"  # the event of a Knative PingSource
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


class InvalidEvent(ValueError):
    """Raised when a message is not a valid CloudEvent; `field` names what is wrong."""

    def __init__(self, field: str, message: str, index: int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.index = index

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body answered to the sender."""
        body: dict[str, Any] = {"error": "invalid CloudEvent", "field": self.field, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        return body


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A CloudEvent: context attributes and extensions as strings, data as bytes."""

    attributes: dict[str, str]
    data: bytes | None = None

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def datacontenttype(self) -> str | None:
        return self.attributes.get("datacontenttype")

    def with_attributes(self, **extra: str) -> CloudEvent:
        """A copy with the given attributes or extensions added or replaced."""
        return CloudEvent({**self.attributes, **extra}, self.data)

    def json(self) -> Any:
        """The data decoded as JSON; raises InvalidEvent(`data`) when it is not JSON."""
        if self.data is None:
            raise InvalidEvent("data", "expected JSON data, found none")
        try:
            return orjson.loads(self.data)
        except orjson.JSONDecodeError as error:
            raise InvalidEvent("data", f"expected JSON data: {error}") from None


def new_event(type: str, source: str, id: str, data: Any = None, **extensions: str) -> CloudEvent:
    """A valid CloudEvent with JSON data (or none) and the given extensions."""
    attributes = {"specversion": SPEC_VERSION, "id": id, "source": source, "type": type, **extensions}
    if data is None:
        return validate(attributes, None)
    attributes["datacontenttype"] = "application/json"
    return validate(attributes, orjson.dumps(data))


def validate(attributes: dict[str, str], data: bytes | None) -> CloudEvent:
    """Check the required attributes and `time`; return the event or raise InvalidEvent."""
    for name in REQUIRED_ATTRIBUTES:
        if not attributes.get(name):
            raise InvalidEvent(name, f"required attribute '{name}' is missing or empty")
    if attributes["specversion"] != SPEC_VERSION:
        raise InvalidEvent(
            "specversion", f"expected '{SPEC_VERSION}', found '{attributes['specversion']}'"
        )
    time = attributes.get("time")
    if time is not None and not _is_rfc3339(time):
        raise InvalidEvent("time", f"expected an RFC 3339 timestamp, found '{time}'")
    return CloudEvent(attributes, data)


# --- HTTP binding -------------------------------------------------------------------


def is_batch(headers: Mapping[str, str]) -> bool:
    """True when the HTTP message is in batch mode."""
    return _content_type(headers).startswith(BATCH_CONTENT_TYPE)


def from_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Parse one CloudEvent from an HTTP message in binary or structured mode."""
    content_type = _content_type(headers)
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return from_structured(_json_object(body))
    if content_type.startswith(BATCH_CONTENT_TYPE):
        raise InvalidEvent("content-type", "expected one event, found a batch")
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-"):
            attributes[lowered[3:]] = unquote(value) if "%" in value else value
    if not attributes:
        raise InvalidEvent(
            "specversion",
            "not a CloudEvent: expected ce-* headers (binary mode) "
            f"or content-type {STRUCTURED_CONTENT_TYPE} (structured mode)",
        )
    if content_type:
        attributes["datacontenttype"] = content_type
    return validate(attributes, body or None)


def from_http_batch(body: bytes) -> list[CloudEvent | InvalidEvent]:
    """Parse a batch-mode body; each entry is an event or the error of that entry."""
    items = _json_body(body, list, "a JSON array of events")
    parsed: list[CloudEvent | InvalidEvent] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidEvent("event", f"expected a JSON object, found {type(item).__name__}")
            parsed.append(from_structured(item))
        except InvalidEvent as error:
            parsed.append(InvalidEvent(error.field, error.message, index))
    return parsed


def from_structured(document: dict[str, Any]) -> CloudEvent:
    """Build a CloudEvent from the JSON object of structured mode."""
    attributes: dict[str, str] = {}
    data: bytes | None = None
    for name, value in document.items():
        if name == "data":
            data = _structured_data(value, document.get("datacontenttype"))
        elif name == "data_base64":
            try:
                data = base64.b64decode(value, validate=True)
            except (ValueError, TypeError):
                raise InvalidEvent("data_base64", "expected base64 text") from None
        elif not _ATTRIBUTE_NAME.match(name):
            raise InvalidEvent(name, "expected an attribute name of lower-case letters or digits")
        else:
            attributes[name] = _attribute_text(name, value)
    if data is not None and "data" in document and "datacontenttype" not in attributes:
        attributes["datacontenttype"] = "application/json"
    return validate(attributes, data)


def to_http_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body of the event in HTTP binary mode."""
    headers: dict[str, str] = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers["content-type"] = value
        else:
            headers["ce-" + name] = quote(value, safe=_HEADER_SAFE)
    return headers, event.data or b""


def to_structured(event: CloudEvent) -> dict[str, Any]:
    """The event as the JSON object of structured mode."""
    document: dict[str, Any] = dict(event.attributes)
    if event.data is not None:
        if _is_json(event.datacontenttype):
            try:
                document["data"] = orjson.loads(event.data)
                return document
            except orjson.JSONDecodeError:
                pass
        document["data_base64"] = base64.b64encode(event.data).decode()
    return document


# --- Kafka binding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A Kafka record as the CloudEvents Kafka binding writes it."""

    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes | None


def to_kafka(event: CloudEvent) -> KafkaRecord:
    """The event in Kafka binary mode; the `partitionkey` extension becomes the key."""
    headers: list[tuple[str, bytes]] = []
    for name, value in event.attributes.items():
        header = "content-type" if name == "datacontenttype" else "ce_" + name
        headers.append((header, value.encode()))
    key = event.attributes.get("partitionkey")
    return KafkaRecord(key.encode() if key is not None else None, headers, event.data)


def from_kafka(headers: Iterable[tuple[str, bytes | None]] | None, value: bytes | None) -> CloudEvent | None:
    """The CloudEvent a Kafka record holds (binary or structured mode), or None if none."""
    attributes: dict[str, str] = {}
    content_type = ""
    for name, raw in headers or ():
        lowered = name.lower()
        text = raw.decode("utf-8", "replace") if raw is not None else ""
        if lowered.startswith("ce_"):
            attributes[lowered[3:]] = text
        elif lowered == "content-type":
            content_type = text
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return from_structured(_json_object(value or b""))
    if "specversion" not in attributes:
        return None
    if content_type:
        attributes["datacontenttype"] = content_type
    return validate(attributes, value)


# --- helpers ------------------------------------------------------------------------


def _content_type(headers: Mapping[str, str]) -> str:
    value = headers.get("content-type")
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == "content-type"), "")


def _is_rfc3339(text: str) -> bool:
    if not _RFC3339.match(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _json_object(body: bytes) -> dict[str, Any]:
    return _json_body(body, dict, "a JSON object")


def _json_body(body: bytes, expected: type, what: str) -> Any:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("body", f"expected {what}: {error}") from None
    if not isinstance(document, expected):
        raise InvalidEvent("body", f"expected {what}, found {type(document).__name__}")
    return document


def _structured_data(value: Any, content_type: Any) -> bytes:
    if isinstance(value, str) and not _is_json(content_type if isinstance(content_type, str) else None):
        return value.encode()
    return orjson.dumps(value)


def _attribute_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    raise InvalidEvent(name, f"expected a string, integer or boolean, found {type(value).__name__}")


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json") or media_type == "text/json"
