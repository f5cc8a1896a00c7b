"""Alert rules as declared in the rules file (the `alert-rules` ConfigMap): loaded and checked once.

Every rule has an `id`, a `kind` and what that kind needs:

- `threshold`: a metric (`voltage`, `current`, `loading`, `frequency`, `power_factor`, `temperature`,
  `active_power`) compared with severity levels, each with a `low` and/or `high` limit made of a
  `raise` and a `clear` level (hysteresis: a level is entered beyond `raise` and left only back
  inside `clear`); optionally over a `window` mean and only after the condition `hold`s for a while;
- `reverse_flow`: a meter's export register rising with no registered generation;
- `missing_data`: no reading from a device for `intervals` expected intervals (plus `lateness`, the
  time readings of one path may lag another's);
- `flatline`: a metric that has not changed for `duration`;
- `spike`: |z| of a metric against its same-time-of-week baseline above `raise_z`.

Durations are ISO-8601 (`PT10M`). Severities: info, warning, critical, emergency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.config import parse_duration

SEVERITIES = ("info", "warning", "critical", "emergency")
METRICS = ("voltage", "current", "loading", "frequency", "power_factor", "temperature", "active_power")
DEVICE_KINDS = ("sensor", "meter")


class RulesError(ValueError):
    """Raised when the rules file is not valid; names the file and the field."""


@dataclass(frozen=True)
class Limit:
    """One side of a level: entered beyond `raise_at`, left only back inside `clear_at`."""

    raise_at: float
    clear_at: float


@dataclass(frozen=True)
class Level:
    """A severity and its limits; a value below `low.raise_at` or above `high.raise_at` enters it."""

    severity: str
    low: Limit | None = None
    high: Limit | None = None

    def entered(self, value: float) -> bool:
        """True when `value` lies beyond a raise level."""
        return (self.low is not None and value < self.low.raise_at) or (
            self.high is not None and value > self.high.raise_at
        )

    def left(self, value: float) -> bool:
        """True when `value` is back inside every clear level."""
        return (self.low is None or value >= self.low.clear_at) and (
            self.high is None or value <= self.high.clear_at
        )

    def crossed(self, value: float) -> float:
        """The raise level that `value` is beyond (or the nearer one when inside both)."""
        if self.low is not None and (self.high is None or value < (self.low.raise_at + self.high.raise_at) / 2):
            return self.low.raise_at
        assert self.high is not None
        return self.high.raise_at


@dataclass(frozen=True)
class Rule:
    """One rule; the fields other than id, kind, severity and applies_to are those of its kind."""

    id: str
    kind: str
    description: str
    applies_to: tuple[str, ...] = DEVICE_KINDS
    severity: str = "warning"
    metric: str | None = None
    levels: tuple[Level, ...] = ()
    window_s: float = 0.0
    hold_s: float = 0.0
    intervals: int = 3
    default_interval_s: float = 900.0
    lateness_s: float = 0.0
    duration_s: float = 0.0
    tolerance: float = 0.0
    min_export_kwh: float = 0.0
    clear_after: int = 4
    raise_z: float = 3.0
    clear_z: float = 2.0
    min_samples: int = 4
    slot_s: float = 3600.0


@dataclass(frozen=True)
class RuleSet:
    """The rules of the platform, in file order."""

    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Read and check the rules file; raises RulesError naming the file and field."""
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise RulesError(f"{path}: expected a readable YAML rules file, found: {error}") from None
        return cls.parse(document, str(path))

    @classmethod
    def parse(cls, document: Any, where: str = "rules") -> RuleSet:
        """Check a parsed rules document; raises RulesError naming the field."""
        if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
            raise RulesError(f"{where}: expected a mapping with a list `rules`, found {type(document).__name__}")
        rules = tuple(_rule(entry, f"{where}: rules[{index}]") for index, entry in enumerate(document["rules"]))
        ids = [rule.id for rule in rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise RulesError(f"{where}: expected unique rule ids, found {', '.join(duplicates)} more than once")
        return cls(rules)

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        """The rules of one kind."""
        return tuple(rule for rule in self.rules if rule.kind == kind)


_KIND_FIELDS: dict[str, dict[str, str]] = {
    # kind -> rules-file key -> Rule field, besides id, kind, description, applies_to, severity
    "threshold": {"metric": "metric", "levels": "levels", "window": "window_s", "hold": "hold_s"},
    "reverse_flow": {"min_export_kwh": "min_export_kwh", "clear_after": "clear_after"},
    "missing_data": {"intervals": "intervals", "default_interval": "default_interval_s", "lateness": "lateness_s"},
    "flatline": {"metric": "metric", "duration": "duration_s", "tolerance": "tolerance"},
    "spike": {"metric": "metric", "raise_z": "raise_z", "clear_z": "clear_z", "min_samples": "min_samples",
              "slot": "slot_s"},
}
_COMMON = {"id", "kind", "description", "applies_to", "severity"}


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise RulesError(f"{where}: expected a mapping, found {type(entry).__name__}")
    rule_id = _text(entry, "id", where)
    where = f"{where} ({rule_id})"
    kind = _text(entry, "kind", where)
    if kind not in _KIND_FIELDS:
        raise RulesError(f"{where}.kind: expected one of {', '.join(_KIND_FIELDS)}, found {kind!r}")
    fields = _KIND_FIELDS[kind]
    unknown = sorted(set(entry) - _COMMON - set(fields))
    if unknown:
        raise RulesError(f"{where}: expected only the fields {', '.join(sorted(_COMMON | set(fields)))} "
                         f"for a {kind} rule, found {', '.join(unknown)}")
    values: dict[str, Any] = {
        "id": rule_id, "kind": kind, "description": str(entry.get("description", "")),
        "applies_to": _applies_to(entry.get("applies_to", list(DEVICE_KINDS)), f"{where}.applies_to"),
        "severity": _severity(entry.get("severity", "warning"), f"{where}.severity"),
    }
    for key, name in fields.items():
        if key in entry:
            values[name] = _field(key, entry[key], f"{where}.{key}")
    if "metric" in fields and values.get("metric") is None:
        raise RulesError(f"{where}.metric: expected one of {', '.join(METRICS)}, found none")
    if kind == "threshold" and not values.get("levels"):
        raise RulesError(f"{where}.levels: expected at least one level, found none")
    return Rule(**values)


def _field(key: str, value: Any, where: str) -> Any:
    if key == "metric":
        if value not in METRICS:
            raise RulesError(f"{where}: expected one of {', '.join(METRICS)}, found {value!r}")
        return value
    if key == "levels":
        if not isinstance(value, list):
            raise RulesError(f"{where}: expected a list of levels, found {type(value).__name__}")
        return tuple(_level(level, f"{where}[{index}]") for index, level in enumerate(value))
    if key in ("window", "hold", "default_interval", "lateness", "duration", "slot"):
        try:
            return parse_duration(str(value))
        except ValueError as error:
            raise RulesError(f"{where}: {error}") from None
    if key in ("intervals", "clear_after", "min_samples"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RulesError(f"{where}: expected a whole number >= 1, found {value!r}")
        return value
    return _number(value, where)


def _level(entry: Any, where: str) -> Level:
    if not isinstance(entry, Mapping) or not {"low", "high"} & set(entry):
        raise RulesError(f"{where}: expected a mapping with severity and a low and/or high limit, found {entry!r}")
    low = _limit(entry.get("low"), f"{where}.low", below=True)
    high = _limit(entry.get("high"), f"{where}.high", below=False)
    return Level(_severity(entry.get("severity"), f"{where}.severity"), low, high)


def _limit(entry: Any, where: str, *, below: bool) -> Limit | None:
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or set(entry) != {"raise", "clear"}:
        raise RulesError(f"{where}: expected a mapping of `raise` and `clear`, found {entry!r}")
    limit = Limit(_number(entry["raise"], f"{where}.raise"), _number(entry["clear"], f"{where}.clear"))
    inside = limit.clear_at >= limit.raise_at if below else limit.clear_at <= limit.raise_at
    if not inside:
        side = "at or above" if below else "at or below"
        raise RulesError(f"{where}.clear: expected a level {side} raise ({limit.raise_at}), found {limit.clear_at}")
    return limit


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise RulesError(f"{where}: expected one of {', '.join(SEVERITIES)}, found {value!r}")
    return value


def _applies_to(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(kind not in DEVICE_KINDS for kind in value):
        raise RulesError(f"{where}: expected a list of {' and/or '.join(DEVICE_KINDS)}, found {value!r}")
    return tuple(value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise RulesError(f"{where}.{key}: expected a non-empty string, found {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(f"{where}: expected a number, found {value!r}")
    return float(value)
