"""One module per kind of rule: each judges, from one observation and the rule's memory of the
device, whether the rule's condition holds now, and at which severity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.alerting.observations import Observation
from shared.alerting.rules import Rule

Memory = dict[str, Any]  # what one rule remembers of one device; JSON-serialisable


@dataclass(frozen=True, slots=True)
class Context:
    """What a condition may need beyond the device: the meters with registered generation."""

    generation: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition's verdict: `severity` None means the condition does not hold (any open alert clears)."""

    severity: str | None
    message: str
    value: float | None = None
    threshold: float | None = None


# A condition returns None when the observation says nothing about it (e.g. the metric is missing).
Condition = Callable[[Rule, Observation, Memory, "str | None", Context], "Finding | None"]
