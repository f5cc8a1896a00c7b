"""JSON -> Avro validation: an Avro schema compiled once into a tree of small checking closures.

A check takes a datum (plain JSON, or the Avro-typed datum fastavro decodes) and returns
it normalised for fastavro: doubles as floats, timestamp-millis as aware UTC datetimes,
missing fields with defaults filled in. It raises `InvalidData` naming the field, such as
`readings[17].registers.1.8.0`. Besides Avro's types it enforces the catalogue's field
properties: `minimum`/`maximum` on numbers, `keyPattern`/`requiredKeys` on maps and
`minItems`/`maxItems` on arrays.
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

Check = Callable[[Any], Any]

_CONSTRAINTS = frozenset({"minimum", "maximum", "keyPattern", "requiredKeys", "minItems", "maxItems"})
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_EARLIEST_MS = (EARLIEST - _EPOCH) // _MILLISECOND
_EARLIEST_S = EARLIEST.timestamp()
_INTEGER_RANGES = MappingProxyType({"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)})
_FLOAT32_MAX = 3.4028234663852886e38
_MISSING = object()
_KEY_MEMORY = 4096
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class InvalidData(ValueError):
    """Raised when a datum does not match its schema; `path` names the field, "" the whole datum."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class SchemaError(ValueError):
    """Raised when a schema uses something the validator cannot check."""


class _Failure(Exception):
    """A check failed; `where` collects the path, innermost segment first."""

    def __init__(self, message: str, *where: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.where: list[str | int] = list(where)

    def path(self) -> str:
        parts: list[str] = []
        for segment in reversed(self.where):
            if isinstance(segment, int):
                parts.append(f"[{segment}]")
            else:
                parts.append(f".{segment}" if parts else segment)
        return "".join(parts)


def compile_validator(schema: Any, max_future_seconds: float) -> Callable[[Any], Any]:
    """The validating, normalising function of a self-contained Avro schema (names fully qualified)."""
    check = _Compiler(max_future_seconds).compile(schema, {})

    def validate(data: Any) -> Any:
        try:
            return check(data)
        except _Failure as failure:
            raise InvalidData(failure.path(), failure.message) from None

    return validate


def _describe(value: Any) -> str:
    """A short account of a value for error messages, in JSON terms."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}" if math.isfinite(value) else f"non-finite number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, datetime):
        return f"datetime {value.isoformat()}"
    return type(value).__name__


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " or ".join(_type_name(branch) for branch in schema)
    kind = schema["type"]
    if kind in ("record", "error", "enum", "fixed"):
        return f"{kind} {schema['name']}"
    if kind == "array":
        return f"array of {_type_name(schema['items'])}"
    if kind == "map":
        return f"map of {_type_name(schema['values'])}"
    return schema.get("logicalType", kind)


class _Compiler:
    """Compiles one schema; remembers the named types it has met."""

    def __init__(self, max_future_seconds: float) -> None:
        self.max_future_seconds = max_future_seconds
        self.named: dict[str, Check] = {}

    def compile(self, schema: Any, constraints: Mapping[str, Any]) -> Check:
        if isinstance(schema, list):
            return self._union(schema, constraints)
        if isinstance(schema, str):
            if schema in self.named:
                _no_constraints(constraints, schema)
                return self.named[schema]
            return self._primitive(schema, None, constraints)
        own = {key: schema[key] for key in _CONSTRAINTS if key in schema}
        constraints = {**own, **constraints}
        kind = schema["type"]
        if kind in ("record", "error"):
            _no_constraints(constraints, schema["name"])
            return self._record(schema)
        if kind == "enum":
            _no_constraints(constraints, schema["name"])
            return self._enum(schema)
        if kind == "array":
            return self._array(schema, constraints)
        if kind == "map":
            return self._map(schema, constraints)
        if isinstance(kind, str) and kind in _PRIMITIVES:
            return self._primitive(kind, schema.get("logicalType"), constraints)
        if isinstance(kind, (dict, list)) or kind in self.named:
            return self.compile(kind, constraints)
        raise SchemaError(f"expected a supported Avro type, found {kind!r}")

    def _primitive(self, kind: str, logical: str | None, constraints: Mapping[str, Any]) -> Check:
        if logical == "timestamp-millis" and kind == "long":
            _no_constraints(constraints, logical)
            return _timestamp_millis(self.max_future_seconds)
        if logical is not None:
            raise SchemaError(f"expected logicalType timestamp-millis on a long, found {logical} on {kind}")
        if kind in ("float", "double"):
            return _number(kind, constraints)
        if kind in _INTEGER_RANGES:
            return _integer(kind, constraints)
        _no_constraints(constraints, kind)
        if kind == "string":
            return _string
        if kind == "boolean":
            return _boolean
        if kind == "null":
            return _null
        raise SchemaError(f"expected a supported Avro type, found {kind!r}")

    def _record(self, schema: Mapping[str, Any]) -> Check:
        name = schema["name"]
        compiled: list[Check] = []
        self.named[name] = lambda value: compiled[0](value)  # recursive references while compiling
        fields = tuple(self._field(field) for field in schema["fields"])
        names = tuple(field[0] for field in fields)
        expected = ", ".join(names)

        def check_record(value: Any) -> dict[str, Any]:
            if type(value) is not dict:
                raise _Failure(f"expected an object ({name}), found {_describe(value)}")
            record: dict[str, Any] = {}
            present = 0
            for field, check, fill, type_name in fields:
                item = value.get(field, _MISSING)
                if item is not _MISSING:
                    present += 1
                    try:
                        record[field] = check(item)
                    except _Failure as failure:
                        failure.where.append(field)
                        raise
                elif fill is None:
                    raise _Failure(f"required field: expected {type_name}, found nothing", field)
                else:
                    record[field] = fill()
            if present != len(value):
                unknown = next(key for key in value if key not in names)
                raise _Failure(f"unknown field: expected one of {expected}, found {unknown!r}", unknown)
            return record

        compiled.append(check_record)
        self.named[name] = check_record
        return check_record

    def _field(self, field: Mapping[str, Any]) -> tuple[str, Check, Callable[[], Any] | None, str]:
        constraints = {key: field[key] for key in _CONSTRAINTS if key in field}
        check = self.compile(field["type"], constraints)
        if "default" not in field:
            return field["name"], check, None, _type_name(field["type"])
        try:
            default = check(field["default"])
        except _Failure as failure:
            raise SchemaError(f"field {field['name']}: default {failure.message}") from None
        if isinstance(default, (dict, list)):
            return field["name"], check, lambda: copy.deepcopy(default), _type_name(field["type"])
        return field["name"], check, lambda: default, _type_name(field["type"])

    def _union(self, branches: list[Any], constraints: Mapping[str, Any]) -> Check:
        nullable = "null" in branches
        others = [branch for branch in branches if branch != "null"]
        checks = [self.compile(branch, constraints) for branch in others]
        expected = _type_name(branches)
        if len(checks) == 1:
            (only,) = checks
            if not nullable:
                return only
            return lambda value: None if value is None else only(value)

        def check_union(value: Any) -> Any:
            if value is None and nullable:
                return None
            for check in checks:
                try:
                    return check(value)
                except _Failure:
                    continue
            raise _Failure(f"expected {expected}, found {_describe(value)}")

        return check_union

    def _enum(self, schema: Mapping[str, Any]) -> Check:
        symbols = frozenset(schema["symbols"])
        expected = ", ".join(repr(symbol) for symbol in schema["symbols"])

        def check_enum(value: Any) -> str:
            if type(value) is str and value in symbols:
                return value
            raise _Failure(f"expected one of {expected}, found {_describe(value)}")

        return check_enum

    def _array(self, schema: Mapping[str, Any], constraints: Mapping[str, Any]) -> Check:
        _only(constraints, {"minItems", "maxItems"}, "array")
        check_item = self.compile(schema["items"], {})
        least = constraints.get("minItems", 0)
        most = constraints.get("maxItems", math.inf)

        def check_array(value: Any) -> list[Any]:
            if type(value) is not list:
                raise _Failure(f"expected an array, found {_describe(value)}")
            if len(value) < least:
                raise _Failure(f"expected at least {_items(least)}, found {len(value)}")
            if len(value) > most:
                raise _Failure(f"expected at most {_items(most)}, found {len(value)}")
            items = []
            for index, item in enumerate(value):
                try:
                    items.append(check_item(item))
                except _Failure as failure:
                    failure.where.append(index)
                    raise
            return items

        return check_array

    def _map(self, schema: Mapping[str, Any], constraints: Mapping[str, Any]) -> Check:
        _only(constraints, {"keyPattern", "requiredKeys"}, "map")
        check_value = self.compile(schema["values"], {})
        pattern = constraints.get("keyPattern")
        key_matches = re.compile(pattern).fullmatch if pattern is not None else None
        required = tuple(constraints.get("requiredKeys", ()))
        value_type = _type_name(schema["values"])
        good_keys: set[str] = set()  # keys already accepted: each is checked once

        def check_map(value: Any) -> dict[str, Any]:
            if type(value) is not dict:
                raise _Failure(f"expected an object (map of {value_type}), found {_describe(value)}")
            entries = {}
            for key, item in value.items():
                if key not in good_keys:
                    if type(key) is not str:
                        raise _Failure(f"expected a string key, found {_describe(key)}", str(key))
                    if key_matches is not None and not key_matches(key):
                        raise _Failure(f"expected a key matching {pattern}, found {key!r}", key)
                    if len(good_keys) < _KEY_MEMORY:
                        good_keys.add(key)
                try:
                    entries[key] = check_value(item)
                except _Failure as failure:
                    failure.where.append(key)
                    raise
            for key in required:
                if key not in entries:
                    raise _Failure(f"required key: expected {value_type}, found nothing", key)
            return entries

        return check_map


def _no_constraints(constraints: Mapping[str, Any], what: str) -> None:
    _only(constraints, set(), what)


def _only(constraints: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(constraints) - allowed)
    if extra:
        raise SchemaError(f"expected no {', '.join(extra)} on {what}")


def _null(value: Any) -> None:
    if value is not None:
        raise _Failure(f"expected null, found {_describe(value)}")


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _Failure(f"expected a boolean, found {_describe(value)}")


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Failure(f"expected a string, found {_describe(value)}")


def _number(kind: str, constraints: Mapping[str, Any]) -> Check:
    _only(constraints, {"minimum", "maximum"}, kind)
    limit = _FLOAT32_MAX if kind == "float" else math.inf
    least = max(float(constraints.get("minimum", -limit)), -limit)
    most = min(float(constraints.get("maximum", limit)), limit)
    bounds = _bounds_text(constraints)

    def check_number(value: Any) -> float:
        if type(value) is float:
            number = value
            if not math.isfinite(number):
                raise _Failure(f"expected a finite number, found {_describe(value)}")
        elif type(value) is int:
            number = float(value)
        else:
            raise _Failure(f"expected a number, found {_describe(value)}")
        if least <= number <= most:
            return number
        raise _Failure(f"expected a number{bounds or ' in ' + kind + ' range'}, found {_describe(value)}")

    return check_number


def _integer(kind: str, constraints: Mapping[str, Any]) -> Check:
    _only(constraints, {"minimum", "maximum"}, kind)
    low, high = _INTEGER_RANGES[kind]
    least = max(math.ceil(constraints.get("minimum", low)), low)
    most = min(math.floor(constraints.get("maximum", high)), high)
    bounds = _bounds_text({"minimum": least, "maximum": most})

    def check_integer(value: Any) -> int:
        if type(value) is not int:
            raise _Failure(f"expected an integer, found {_describe(value)}")
        if least <= value <= most:
            return value
        raise _Failure(f"expected an integer{bounds}, found {_describe(value)}")

    return check_integer


def _bounds_text(constraints: Mapping[str, Any]) -> str:
    parts = []
    if "minimum" in constraints:
        parts.append(f">= {constraints['minimum']}")
    if "maximum" in constraints:
        parts.append(f"<= {constraints['maximum']}")
    return " " + " and ".join(parts) if parts else ""


def _timestamp_millis(max_future_seconds: float) -> Check:
    expected = "an RFC 3339 timestamp with a timezone, or epoch milliseconds"
    out_of_range = f"expected a time from {EARLIEST:%Y-%m-%dT%H:%MZ} to {max_future_seconds:g} s from now"

    def check_timestamp(value: Any) -> datetime:
        if type(value) is int:
            if _EARLIEST_MS <= value <= (time.time() + max_future_seconds) * 1000:
                return _EPOCH + _MILLISECOND * value
            raise _Failure(f"{out_of_range}, found {_describe(value)}{_as_time(value)}")
        if type(value) is str:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise _Failure(f"expected {expected}, found {_describe(value)}") from None
        elif isinstance(value, datetime):
            moment = value
        else:
            raise _Failure(f"expected {expected}, found {_describe(value)}")
        if moment.tzinfo is None:
            raise _Failure(f"expected {expected}, found {_describe(value)} without a timezone")
        if not _EARLIEST_S <= moment.timestamp() <= time.time() + max_future_seconds:
            raise _Failure(f"{out_of_range}, found {_describe(value)}")
        moment = moment.astimezone(UTC)
        if moment.microsecond % 1000:
            return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        return moment

    return check_timestamp


def _as_time(millis: int) -> str:
    try:
        moment = _EPOCH + _MILLISECOND * millis
    except OverflowError:
        return ""
    return f" ({moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')})"


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"
