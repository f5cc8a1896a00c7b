"""Reading a manifest strictly: every field is either taken by the local gateway or refused.

A `Node` is one value of a manifest with where it was found (`<file>: <Kind> <name>`, and its field
path such as `spec.http[2].fault`). `Node.fields(allowed)` refuses any key not in `allowed` with
GatewayManifestError naming the file and the field path, so a field the local gateway would have to
ignore stops `smartgrid up` instead of being ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from local.eventing.manifests import ManifestError

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class GatewayManifestError(ManifestError):
    """A manifest the local gateway refuses; the message names the file, the resource and the field (a
    ManifestError, so the command line reports it like the eventing manifests' errors)."""


@dataclass(frozen=True)
class Node:
    """A value of a manifest, with the resource it belongs to (`origin`) and its field path."""

    value: Any
    origin: str
    path: str = ""

    @property
    def where(self) -> str:
        """`<file>: <Kind> <name>: <path>` (without the path at the resource's top)."""
        return f"{self.origin}: {self.path}" if self.path else self.origin

    def error(self, message: str) -> GatewayManifestError:
        """An error about this value."""
        return GatewayManifestError(f"{self.where}: {message}")

    def child(self, key: str, value: Any) -> Node:
        return Node(value, self.origin, f"{self.path}.{key}" if self.path else key)

    def fields(self, allowed: Iterable[str]) -> dict[str, Node]:
        """The keys of this mapping, each a Node; refuses a key not in `allowed`, and a non-mapping."""
        if self.value is None:
            return {}
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, found {type(self.value).__name__}")
        allowed = tuple(allowed)
        for key in self.value:
            if key not in allowed:
                supported = ", ".join(allowed) or "none"
                raise self.child(str(key), None).error(
                    f"not supported by the local gateway (supported here: {supported})")
        return {key: self.child(key, value) for key, value in self.value.items()}

    def items(self) -> list[Node]:
        """The elements of this list, each a Node (a missing list: none)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, found {type(self.value).__name__}")
        return [Node(value, self.origin, f"{self.path}[{index}]") for index, value in enumerate(self.value)]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.error(f"expected a non-empty string, found {self.value!r}")
        return self.value

    def texts(self) -> tuple[str, ...]:
        return tuple(item.text() for item in self.items())

    def integer(self, minimum: int = 0) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < minimum:
            raise self.error(f"expected a whole number of at least {minimum}, found {self.value!r}")
        return self.value

    def flag(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, found {self.value!r}")
        return self.value

    def duration(self) -> float:
        """Seconds of an Istio duration such as `10s`, `0.5s`, `250ms`, `1m30s`."""
        text = self.value if isinstance(self.value, str) else ""
        if not text or _DURATION.sub("", text) != "":
            raise self.error(f"expected a duration such as 10s or 250ms, found {self.value!r}")
        return sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION.findall(text))

    def one_of(self, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        if self.value not in choices:
            raise self.error(f"expected one of {', '.join(choices)}, found {self.value!r}")
        return self.value
