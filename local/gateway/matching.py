"""Istio's StringMatch (`exact`, `prefix`, `regex`) and the path normalisation Envoy applies first.

A `prefix` is a plain string prefix (Envoy: `/api/v1/auth` matches `/api/v1/authx` too); a `regex` must
match the whole value (RE2 semantics: Python's `re.fullmatch` over the same syntax). An empty StringMatch
(`{}`) matches any present value (presence, as for `headers: {x-name: {}}`).

Paths are normalised like Istio's default (`BASE`): percent-encoded unreserved characters are decoded and
dot segments removed (RFC 3986 section 6.2.2), so `/api/v1/%61lerts/../users` is `/api/v1/users` for the
routes and the policies alike, and upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from local.gateway.spec import Node

_UNRESERVED_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[Dd]|2[Ee]|5[Ff]|7[Ee])")


@dataclass(frozen=True)
class StringMatch:
    """One of exact, prefix or regex; none of them: presence."""

    exact: str | None = None
    prefix: str | None = None
    regex: re.Pattern[str] | None = None
    ignore_case: bool = False

    @classmethod
    def parse(cls, node: Node, *, ignore_case: bool = False) -> StringMatch:
        fields = node.fields(("exact", "prefix", "regex"))
        if len(fields) > 1:
            raise node.error(f"expected one of exact, prefix or regex, found {', '.join(fields)}")
        if "exact" in fields:
            text = _string(fields["exact"])
            return cls(exact=text.lower() if ignore_case else text, ignore_case=ignore_case)
        if "prefix" in fields:
            text = _string(fields["prefix"])
            return cls(prefix=text.lower() if ignore_case else text, ignore_case=ignore_case)
        if "regex" in fields:
            try:
                pattern = re.compile(fields["regex"].text(), re.IGNORECASE if ignore_case else 0)
            except re.error as error:
                raise fields["regex"].error(f"expected a regular expression, found one that fails: {error}") from None
            return cls(regex=pattern, ignore_case=ignore_case)
        return cls(ignore_case=ignore_case)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.ignore_case and self.regex is None:
            value = value.lower()
        if self.exact is not None:
            return value == self.exact
        if self.prefix is not None:
            return value.startswith(self.prefix)
        if self.regex is not None:
            return self.regex.fullmatch(value) is not None
        return True


def _string(node: Node) -> str:
    if not isinstance(node.value, str):
        raise node.error(f"expected a string, found {node.value!r}")
    return node.value


class BadPath(ValueError):
    """A request target that is not an absolute path."""


def normalize_path(raw_path: str) -> tuple[str, str]:
    """(normalised path, query string with its `?`, or '') of a request target."""
    path, mark, query = raw_path.partition("?")
    if not path.startswith("/"):
        raise BadPath(f"expected an absolute path, found {raw_path[:80]!r}")
    if "%" in path:
        path = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(0)[1:], 16)), path)
    if "/." in path:
        path = _remove_dot_segments(path)
    return path, f"?{query}" if mark else ""


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)
