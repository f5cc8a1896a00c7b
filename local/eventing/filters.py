"""Trigger filters compiled into predicates over a CloudEvent's attributes.

Legacy `spec.filter.attributes` (exact; "" matches any value, present or not, as in the
Kafka data plane) and the `spec.filters` dialects exact, prefix, suffix, all, any, not.
`cesql` is rejected: the local data plane does not evaluate CloudEvents SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Attributes = Mapping[str, str]
Predicate = Callable[[Attributes], bool]
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


class FilterError(ValueError):
    """Raised when a Trigger's filter is not one the data plane can evaluate."""


def compile_trigger_filter(spec: Mapping[str, Any]) -> Predicate:
    """The predicate of a Trigger spec: `filters` when non-empty, else `filter.attributes`."""
    filters = spec.get("filters")
    if filters:
        return _all([compile_filter(entry) for entry in filters])
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    wanted = {name: str(value) for name, value in attributes.items() if value != ""}
    return lambda event: all(event.get(name) == value for name, value in wanted.items())


def compile_filter(entry: Mapping[str, Any]) -> Predicate:
    """The predicate of one `filters` entry, which must use exactly one dialect."""
    dialects = [key for key in entry if key in DIALECTS]
    unknown = [key for key in entry if key not in DIALECTS]
    if unknown:
        raise FilterError(f"unknown filter dialect {unknown[0]!r}; expected one of {', '.join(DIALECTS)}")
    if len(dialects) != 1:
        raise FilterError(f"a filter uses exactly one dialect, found {dialects or 'none'}")
    dialect = dialects[0]
    argument = entry[dialect]
    if dialect == "cesql":
        raise FilterError("the cesql dialect is not supported by the local data plane")
    if dialect in ("exact", "prefix", "suffix"):
        return _string_match(dialect, argument)
    if dialect == "not":
        inner = compile_filter(argument)
        return lambda event: not inner(event)
    if not isinstance(argument, list):
        raise FilterError(f"'{dialect}' expects a list of filters, found {type(argument).__name__}")
    nested = [compile_filter(item) for item in argument]
    return _all(nested) if dialect == "all" else _any(nested)


def _string_match(dialect: str, pairs: Any) -> Predicate:
    if not isinstance(pairs, Mapping) or not pairs:
        raise FilterError(f"'{dialect}' expects a map of attribute to string, found {pairs!r}")
    wanted = {name: str(value) for name, value in pairs.items()}

    def matches(event: Attributes) -> bool:
        for name, value in wanted.items():
            actual = event.get(name)
            if actual is None:
                return False
            if dialect == "exact" and actual != value:
                return False
            if dialect == "prefix" and not actual.startswith(value):
                return False
            if dialect == "suffix" and not actual.endswith(value):
                return False
        return True

    return matches


def _all(predicates: list[Predicate]) -> Predicate:
    return lambda event: all(predicate(event) for predicate in predicates)


def _any(predicates: list[Predicate]) -> Predicate:
    return lambda event: any(predicate(event) for predicate in predicates)
