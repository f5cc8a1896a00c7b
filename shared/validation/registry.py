"""Schema Registry, the Confluent REST API subset: the catalogue's subject names and a small client.

Subjects are the CloudEvents types, plus `<topic>-value` for the Kafka topics the field
gateways produce to (TopicNameStrategy), each naming the type its records carry.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import orjson

from shared.config import Settings
from shared.validation.catalogue import EventSchema, UnknownSchemaId

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
GATEWAY_TOPICS: Mapping[str, str] = MappingProxyType(
    {
        "smartgrid-meter-readings": "com.smartgrid.meter.readings.batch",
        "smartgrid-sensor-data": "com.smartgrid.sensor.reading",
    }
)
SCHEMA_NOT_FOUND = 40403


def subject_types(types: Iterable[str]) -> dict[str, str]:
    """Subject -> CloudEvents type: each type under its own name, and `<topic>-value` for gateway topics."""
    known = set(types)
    subjects = {type: type for type in known}
    subjects.update({f"{topic}-value": type for topic, type in GATEWAY_TOPICS.items() if type in known})
    return dict(sorted(subjects.items()))


def subject_type(subject: str) -> str:
    """The CloudEvents type whose schemas a subject holds."""
    topic = subject.removesuffix("-value")
    return GATEWAY_TOPICS.get(topic, subject) if topic != subject else subject


class RegistryError(RuntimeError):
    """Raised when the registry answers with an error or cannot be reached."""

    def __init__(self, url: str, status: int | None, error_code: int | None, message: str) -> None:
        super().__init__(f"{url}: {message}" + (f" (HTTP {status}, error code {error_code})" if status else ""))
        self.url = url
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A schema version under a subject, as the registry reports it."""

    subject: str
    version: int
    schema_id: int
    schema: dict[str, Any] = field(repr=False)


class RegistryClient:
    """A blocking client of a Confluent-compatible Schema Registry; schemas by id are cached."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, max_future_seconds: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_future_seconds = (
            Settings.from_env().max_future_seconds if max_future_seconds is None else max_future_seconds
        )
        self._schemas: dict[int, dict[str, Any]] = {}
        self._event_schemas: dict[int, EventSchema] = {}

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        """The Avro schema with this id (GET /schemas/ids/<id>); raises UnknownSchemaId."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            body = self._get_schema(f"/schemas/ids/{schema_id}", schema_id)
            schema = self._schemas[schema_id] = orjson.loads(body["schema"])
        return schema

    def latest(self, subject: str) -> RegisteredSchema:
        """The newest schema version under a subject (GET /subjects/<subject>/versions/latest)."""
        body = self._get(f"/subjects/{quote(subject, safe='')}/versions/latest")
        return RegisteredSchema(body["subject"], body["version"], body["id"], orjson.loads(body["schema"]))

    def event_schema(self, schema_id: int) -> EventSchema:
        """The compiled schema with this id, for `wire.decode`; raises UnknownSchemaId."""
        event_schema = self._event_schemas.get(schema_id)
        if event_schema is None:
            schema = self.schema_by_id(schema_id)
            holders = self._get_schema(f"/schemas/ids/{schema_id}/versions", schema_id)
            if not holders:
                raise UnknownSchemaId(schema_id)
            event_schema = self._event_schemas[schema_id] = EventSchema.build(
                subject_type(holders[0]["subject"]),
                holders[0]["version"],
                schema_id,
                schema,
                max_future_seconds=self.max_future_seconds,
            )
        return event_schema

    def _get_schema(self, path: str, schema_id: int) -> Any:
        try:
            return self._get(path)
        except RegistryError as error:
            if error.error_code == SCHEMA_NOT_FOUND:
                raise UnknownSchemaId(schema_id) from None
            raise

    def _get(self, path: str) -> Any:
        url = self.base_url + path
        request = urllib.request.Request(url, headers={"Accept": f"{CONTENT_TYPE}, application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            body = _error_body(error.read())
            raise RegistryError(url, error.code, body.get("error_code"), body.get("message", error.reason)) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RegistryError(url, None, None, f"expected a Schema Registry, found {error}") from None


def _error_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
