"""The rule engine: from a device's state and a new observation (or the passing of time), the alert
transitions (raised, updated, cleared) and the device's next state. Pure: no I/O.

One open alert per rule and device at most (the deduplication key `<rule>:<device>`). A reading
older than the device's last one is too late for the rules (their windows move forward only) and
a redelivered reading changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from shared.alerting.conditions import (
    Condition,
    Context,
    Finding,
    Memory,
    flatline,
    missing_data,
    reverse_flow,
    spike,
    threshold,
)
from shared.alerting.observations import Observation
from shared.alerting.rules import Rule, RuleSet

RAISED, UPDATED, ACKNOWLEDGED, CLEARED = "raised", "updated", "acknowledged", "cleared"
LIFE_ORDER = {RAISED: 0, UPDATED: 1, ACKNOWLEDGED: 2, CLEARED: 3}
CONDITIONS: dict[str, Condition] = {
    "threshold": threshold.evaluate,
    "reverse_flow": reverse_flow.evaluate,
    "missing_data": missing_data.evaluate,
    "flatline": flatline.evaluate,
    "spike": spike.evaluate,
}


@dataclass(frozen=True, slots=True)
class Transition:
    """A change in an alert's life: the data of a `com.smartgrid.alert.<change>` event."""

    change: str
    alert_id: str
    rule_id: str
    severity: str
    device_id: str
    feeder_id: str | None
    region: str | None
    at: float
    raised_at: float
    message: str
    value: float | None = None
    threshold: float | None = None
    actor: str | None = None

    @property
    def dedup_key(self) -> str:
        """At most one open alert per key: rule and device."""
        return f"{self.rule_id}:{self.device_id}"

    @property
    def event_id(self) -> str:
        """Stable across retries, so the store and the broker see each transition once."""
        return f"{self.alert_id}:{self.change}:{round(self.at * 1000)}"

    def to_json(self) -> bytes:
        """The transition as JSON (for the outbox)."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes) -> Transition:
        """The transition `to_json` wrote."""
        return cls(**orjson.loads(data))


@dataclass(slots=True)
class OpenAlert:
    """The open alert of one rule on one device."""

    alert_id: str
    severity: str
    raised_at: float


@dataclass(slots=True)
class DeviceState:
    """What the rules remember of one device: last reading time, each rule's memory, open alerts."""

    device_id: str
    kind: str = ""
    feeder_id: str | None = None
    region: str | None = None
    last_at: float | None = None
    memory: dict[str, Memory] = field(default_factory=dict)
    open: dict[str, OpenAlert] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The device's clock group: its kind and feeder (readings of one group take one path)."""
        return clock_group(self.kind, self.feeder_id)

    def to_json(self) -> bytes:
        """The state as JSON (one Redis value per device); orjson writes dataclasses as objects."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes) -> DeviceState:
        """The state `to_json` wrote."""
        document: dict[str, Any] = orjson.loads(data)
        document["open"] = {rule: OpenAlert(**alert) for rule, alert in document["open"].items()}
        return cls(**document)


def clock_group(kind: str, feeder_id: str | None) -> str:
    """The clock group of a kind of device on a feeder."""
    return f"{kind}:{feeder_id or '-'}"


class RuleEngine:
    """Applies a RuleSet to device states."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._missing = rules.of_kind("missing_data")

    def observe(self, state: DeviceState, observation: Observation, context: Context) -> list[Transition]:
        """Apply one observation; returns the transitions, in rule order. Late readings change nothing."""
        if state.last_at is not None and observation.at <= state.last_at:
            return []
        state.kind, state.last_at = observation.kind, observation.at
        state.feeder_id = observation.feeder_id or state.feeder_id
        state.region = observation.region or state.region
        transitions = []
        for rule in self.rules.rules:
            if observation.kind not in rule.applies_to:
                continue
            memory = state.memory.setdefault(rule.id, {})
            current = state.open[rule.id].severity if rule.id in state.open else None
            finding = CONDITIONS[rule.kind](rule, observation, memory, current, context)
            if finding is not None:
                transitions.extend(self._apply(state, rule, finding, observation.at))
        return transitions

    def sweep(self, state: DeviceState, now: float) -> list[Transition]:
        """Raise the missing-data alerts of a device silent past its deadline at `now`."""
        transitions = []
        for rule in self._missing:
            if state.kind in rule.applies_to and rule.id not in state.open:
                finding = missing_data.overdue(rule, state.memory.get(rule.id, {}), now)
                if finding is not None:
                    transitions.extend(self._apply(state, rule, finding, now))
        return transitions

    def deadline(self, state: DeviceState) -> float | None:
        """The earliest time a missing-data rule would raise for this device, None when none can."""
        deadlines = [
            missing_data.deadline(rule, state.memory[rule.id]) for rule in self._missing
            if rule.id not in state.open and "last" in state.memory.get(rule.id, {}) and state.kind in rule.applies_to
        ]
        return min(deadlines, default=None)

    def close(self, state: DeviceState, alert_id: str, at: float, actor: str) -> Transition | None:
        """An operator's clear of an open alert: it closes now; the rule may raise a new one later."""
        for rule_id, alert in list(state.open.items()):
            if alert.alert_id == alert_id:
                del state.open[rule_id]
                state.memory.pop(rule_id, None)
                return Transition(CLEARED, alert_id, rule_id, alert.severity, state.device_id, state.feeder_id,
                                  state.region, at, alert.raised_at, f"cleared by {actor}", actor=actor)
        return None

    @staticmethod
    def _apply(state: DeviceState, rule: Rule, finding: Finding, at: float) -> list[Transition]:
        alert = state.open.get(rule.id)
        if alert is None and finding.severity is None:
            return []
        base = Transition(RAISED, "", rule.id, finding.severity or "", state.device_id, state.feeder_id,
                          state.region, at, at, finding.message, finding.value, finding.threshold)
        if alert is None:
            alert_id = f"{rule.id}:{state.device_id}:{round(at * 1000)}"
            state.open[rule.id] = OpenAlert(alert_id, base.severity, at)
            return [replace(base, alert_id=alert_id)]
        # A late reading may end an alert raised on a clock ahead of it: its change is not older than the raise.
        base = replace(base, alert_id=alert.alert_id, raised_at=alert.raised_at, at=max(at, alert.raised_at))
        if finding.severity is None:
            del state.open[rule.id]
            return [replace(base, change=CLEARED, severity=alert.severity)]
        if finding.severity != alert.severity:
            alert.severity = finding.severity
            return [replace(base, change=UPDATED)]
        return []
