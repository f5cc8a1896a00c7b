"""The event catalogue: every version of every event type's Avro schema, resolved and compiled.

Schemas live in `<schemas_dir>/<cloudevents-type>/v<N>.avsc`, versions numbered from 1
without gaps. A schema may refer to a named type another event type defines (the batch
refers to `com.smartgrid.meter.MeterReading`); such a reference resolves to the definition
in the latest version of the type that defines it, and each `EventSchema.schema` is
self-contained: the referenced definitions are inlined where first used.

Schema ids are derived from the type and the schema's content (31 bits of a SHA-256), so
an id names one schema forever: adding a version leaves every other id alone, and the same
catalogue yields the same ids on every machine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastavro.schema import SchemaParseException, UnknownType, parse_schema

from shared.config import Settings
from shared.validation.validators import InvalidData, SchemaError, compile_validator

__all__ = [
    "Catalogue",
    "CatalogueError",
    "EventSchema",
    "InvalidData",
    "UnknownEventType",
    "UnknownSchemaId",
]

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")
_NAMED_KINDS = ("record", "error", "enum", "fixed")
_FASTAVRO_KEYS = ("__fastavro_parsed", "__named_schemas")


class CatalogueError(ValueError):
    """Raised when the schema files cannot be loaded; names the file."""


class UnknownEventType(LookupError):
    """Raised for a CloudEvents type the catalogue has no schema for."""

    def __init__(self, type: str) -> None:
        super().__init__(f"expected a CloudEvents type of the catalogue, found {type!r}")
        self.type = type


class UnknownSchemaId(LookupError):
    """Raised for a schema id the catalogue (or registry) does not know."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"expected a known schema id, found {schema_id}")
        self.schema_id = schema_id


@dataclass(frozen=True, slots=True)
class EventSchema:
    """One version of one event type's schema, ready to validate, encode and decode.

    `schema` is the self-contained JSON schema, `parsed` fastavro's form of it, `check` the
    compiled validator behind `validate`, and `partition_key` the top-level field marked
    `"partitionKey": true`, if any.
    """

    type: str
    version: int
    schema_id: int
    schema: dict[str, Any] = field(repr=False, compare=False)
    parsed: dict[str, Any] = field(repr=False, compare=False)
    check: Callable[[Any], Any] = field(repr=False, compare=False)
    partition_key: str | None = field(default=None, compare=False)

    @classmethod
    def build(
        cls, type: str, version: int, schema_id: int, schema: dict[str, Any], *, max_future_seconds: float
    ) -> EventSchema:
        """Parse and compile a self-contained schema; raises SchemaError when it cannot be checked."""
        try:
            parsed = parse_schema(schema)
        except (SchemaParseException, UnknownType) as error:
            raise SchemaError(f"{type} v{version}: {error}") from None
        keys = [entry["name"] for entry in schema.get("fields", ()) if entry.get("partitionKey") is True]
        if len(keys) > 1:
            raise SchemaError(f"{type} v{version}: expected at most one partitionKey field, found {', '.join(keys)}")
        check = compile_validator(schema, max_future_seconds)
        return cls(type, version, schema_id, schema, parsed, check, keys[0] if keys else None)

    @property
    def text(self) -> str:
        """The schema as compact JSON text, as a Schema Registry serves it."""
        return orjson.dumps(self.schema).decode()

    def validate(self, data: Any) -> dict[str, Any]:
        """The datum (JSON or Avro-typed) normalised for Avro; raises InvalidData naming the field."""
        return self.check(data)


class Catalogue:
    """Every schema version of every event type, by type and by schema id."""

    def __init__(self, schemas: Iterable[EventSchema]) -> None:
        self._versions: dict[str, list[EventSchema]] = {}
        self._by_id: dict[int, EventSchema] = {}
        for schema in sorted(schemas, key=lambda s: (s.type, s.version)):
            clash = self._by_id.get(schema.schema_id)
            if clash is not None:
                raise CatalogueError(
                    f"{schema.type} v{schema.version}: schema id {schema.schema_id} is taken by "
                    f"{clash.type} v{clash.version}; expected distinct schemas"
                )
            self._by_id[schema.schema_id] = schema
            self._versions.setdefault(schema.type, []).append(schema)

    @classmethod
    def load(cls, schemas_dir: Path | None = None, *, max_future_seconds: float | None = None) -> Catalogue:
        """Read `<schemas_dir>/<type>/v<N>.avsc` (default: SMARTGRID_SCHEMAS_DIR/events)."""
        settings = Settings.from_env()
        if schemas_dir is None:
            schemas_dir = settings.schemas_dir / "events"
        if max_future_seconds is None:
            max_future_seconds = settings.max_future_seconds
        files = _schema_files(schemas_dir)
        resolved = _Resolver(files).resolve_all()
        schemas = []
        for (type, version), schema in resolved.items():
            try:
                schemas.append(
                    EventSchema.build(
                        type, version, _schema_id(type, schema), schema, max_future_seconds=max_future_seconds
                    )
                )
            except SchemaError as error:
                raise CatalogueError(f"{files[type, version][0]}: {error}") from None
        return cls(schemas)

    @property
    def types(self) -> tuple[str, ...]:
        """The CloudEvents types, sorted."""
        return tuple(self._versions)

    def versions(self, type: str) -> list[EventSchema]:
        """Every version of a type, oldest first; raises UnknownEventType."""
        try:
            return list(self._versions[type])
        except KeyError:
            raise UnknownEventType(type) from None

    def latest(self, type: str) -> EventSchema:
        """The newest version of a type; raises UnknownEventType."""
        try:
            return self._versions[type][-1]
        except KeyError:
            raise UnknownEventType(type) from None

    def by_id(self, schema_id: int) -> EventSchema:
        """The schema with this id; raises UnknownSchemaId."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(schema_id) from None

    def validate(self, type: str, data: Any) -> dict[str, Any]:
        """The datum checked against the type's latest schema and normalised for Avro."""
        return self.latest(type).validate(data)


def _schema_files(schemas_dir: Path) -> dict[tuple[str, int], tuple[Path, Any]]:
    """(type, version) -> (file, raw JSON) for every schema file, checked for form and gaps."""
    if not schemas_dir.is_dir():
        raise CatalogueError(f"{schemas_dir}: expected a folder of event schemas, found none")
    files: dict[tuple[str, int], tuple[Path, Any]] = {}
    for folder in sorted(path for path in schemas_dir.iterdir() if path.is_dir()):
        versions = []
        for path in sorted(folder.glob("*.avsc")):
            match = _VERSION_FILE.match(path.name)
            if match is None:
                raise CatalogueError(f"{path}: expected a file name v<N>.avsc, found {path.name!r}")
            try:
                raw = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as error:
                raise CatalogueError(f"{path}: expected an Avro schema in JSON: {error}") from None
            versions.append(int(match.group(1)))
            files[folder.name, versions[-1]] = (path, raw)
        if sorted(versions) != list(range(1, len(versions) + 1)):
            raise CatalogueError(f"{folder}: expected versions v1..v{len(versions)}, found {sorted(versions)}")
    return files


class _Resolver:
    """Parses the schema files, each after the files whose named types it refers to."""

    def __init__(self, files: dict[tuple[str, int], tuple[Path, Any]]) -> None:
        self.files = files
        self.providers: dict[str, set[tuple[str, int]]] = {}
        for key, (_, raw) in files.items():
            for name in _defined_names(raw, ""):
                self.providers.setdefault(name, set()).add(key)
        self.named: dict[tuple[str, int], dict[str, Any]] = {}
        self.resolved: dict[tuple[str, int], dict[str, Any]] = {}

    def resolve_all(self) -> dict[tuple[str, int], dict[str, Any]]:
        for key in sorted(self.files):
            self._resolve(key, ())
        return {key: self.resolved[key] for key in sorted(self.files)}

    def _resolve(self, key: tuple[str, int], stack: tuple[tuple[str, int], ...]) -> None:
        if key in self.resolved:
            return
        path, raw = self.files[key]
        if key in stack:
            chain = " -> ".join(f"{type} v{version}" for type, version in (*stack, key))
            raise CatalogueError(f"{path}: expected no cycle of references between files, found {chain}")
        seed: dict[str, Any] = {}
        while True:
            named = dict(seed)
            try:
                parsed = parse_schema(raw, named_schemas=named)
                break
            except UnknownType as missing:
                seed.update(self._provide(missing.name, path, (*stack, key)))
            except SchemaParseException as error:
                raise CatalogueError(f"{path}: {error}") from None
        self.named[key] = named
        self.resolved[key] = _inline(parsed, named, set())

    def _provide(self, name: str, path: Path, stack: tuple[tuple[str, int], ...]) -> dict[str, Any]:
        """The named types of the file that defines `name`, resolved first."""
        keys = self.providers.get(name, set())
        types = sorted({type for type, _ in keys})
        if not types:
            raise CatalogueError(f"{path}: expected a type defined in the catalogue, found unknown {name!r}")
        if len(types) > 1:
            raise CatalogueError(f"{path}: expected {name!r} defined by one event type, found {', '.join(types)}")
        provider = max(keys)
        self._resolve(provider, stack)
        if name not in self.named[provider]:
            raise CatalogueError(f"{path}: expected {name!r} in {provider[0]} v{provider[1]}, found it missing")
        return self.named[provider]


def _defined_names(schema: Any, namespace: str) -> Iterator[str]:
    """Full names of the named types a raw schema defines."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _defined_names(branch, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in _NAMED_KINDS:
        name = schema["name"]
        space = schema.get("namespace", namespace)
        full = name if "." in name or not space else f"{space}.{name}"
        yield full
        for entry in schema.get("fields", ()):
            yield from _defined_names(entry.get("type"), full.rpartition(".")[0])
        return
    for part in (kind, schema.get("items"), schema.get("values")):
        yield from _defined_names(part, namespace)


def _inline(schema: Any, named: dict[str, Any], seen: set[str]) -> Any:
    """A parsed schema made self-contained: each named type defined where it is first used."""
    if isinstance(schema, str):
        if schema in named and schema not in seen:
            return _inline(named[schema], named, seen)
        return schema
    if isinstance(schema, list):
        return [_inline(branch, named, seen) for branch in schema]
    node = {key: value for key, value in schema.items() if key not in _FASTAVRO_KEYS}
    kind = node["type"]
    if kind in _NAMED_KINDS:
        seen.add(node["name"])
        if "fields" in node:
            node["fields"] = [{**entry, "type": _inline(entry["type"], named, seen)} for entry in node["fields"]]
    elif kind == "array":
        node["items"] = _inline(node["items"], named, seen)
    elif kind == "map":
        node["values"] = _inline(node["values"], named, seen)
    else:
        node["type"] = _inline(kind, named, seen)
    return node


def _schema_id(type: str, schema: dict[str, Any]) -> int:
    """A positive 31-bit id from the type and the schema's content."""
    digest = hashlib.sha256(type.encode() + b"\n" + orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1
