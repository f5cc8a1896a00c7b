"""The alerts a run's readings should raise: the platform's own rule engine, run in memory over the
readings the platform accepted, in the order they were sent, with one DeviceState per device.

Rules judged on the passing of time (missing data, swept on the platform's event-time clock) are
not expected here: when they fire depends on how far each path to `detect` lags behind the others,
so the summary shows them as observed only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.alerting.conditions import Context
from shared.alerting.engine import RAISED, DeviceState, RuleEngine
from shared.alerting.observations import Observation, from_meter, from_sensor
from shared.alerting.rules import RuleSet

TIMED_KINDS = ("missing_data",)


class ExpectedAlerts:
    """Feeds accepted readings to an in-memory rule engine and keeps the alerts it raises."""

    def __init__(self, rules: RuleSet, generation: frozenset[str]) -> None:
        self._engine = RuleEngine(rules)
        self._context = Context(generation=generation)
        self._states: dict[str, DeviceState] = {}
        self.raised: dict[str, tuple[str, str]] = {}  # alert id -> (rule id, device id)
        self.timed_rules = frozenset(rule.id for kind in TIMED_KINDS for rule in rules.of_kind(kind))

    def sensor_readings(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Apply sensor readings (catalogue datums in their JSON form), in order."""
        self._observe(readings, from_sensor)

    def meter_readings(self, readings: Iterable[Mapping[str, Any]]) -> None:
        """Apply meter readings (catalogue datums in their JSON form), in order."""
        self._observe(readings, from_meter)

    def by_rule(self, already: Collection[str] = frozenset()) -> Counter[str]:
        """Distinct alerts raised, by rule, leaving out the alert ids in `already` (stored by an earlier run)."""
        return Counter(rule for alert_id, (rule, _) in self.raised.items() if alert_id not in already)

    def _observe(self, readings: Iterable[Mapping[str, Any]],
                 observe: Callable[[Mapping[str, Any]], Observation]) -> None:
        for reading in readings:
            observation = observe({**reading, "timestamp": datetime.fromisoformat(reading["timestamp"])})
            state = self._states.setdefault(observation.device_id, DeviceState(observation.device_id))
            for transition in self._engine.observe(state, observation, self._context):
                if transition.change == RAISED:
                    self.raised[transition.alert_id] = (transition.rule_id, transition.device_id)
