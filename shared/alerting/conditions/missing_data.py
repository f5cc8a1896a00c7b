"""`missing_data` rules: no reading from a device for `intervals` of its expected intervals.

The expected interval is learnt from the gaps between a device's readings (a moving average),
`default_interval` until it has two readings. A reading clears the alert; a sweep raises it.
"""

from __future__ import annotations

from shared.alerting.conditions import Context, Finding, Memory
from shared.alerting.observations import Observation
from shared.alerting.rules import Rule

SMOOTHING = 0.2


def evaluate(rule: Rule, observation: Observation, memory: Memory, current: str | None, context: Context) -> Finding:
    """A reading arrived: learn the interval, and the device is not missing."""
    last = memory.get("last")
    if last is not None and observation.at > last:
        gap = observation.at - last
        memory["interval"] = gap if "interval" not in memory else (1 - SMOOTHING) * memory["interval"] + SMOOTHING * gap
    memory["last"] = observation.at
    return Finding(None, "readings arrive again")


def deadline(rule: Rule, memory: Memory) -> float:
    """When the device counts as missing if nothing arrives before (the rule's lateness included)."""
    return memory["last"] + rule.intervals * memory.get("interval", rule.default_interval_s) + rule.lateness_s


def overdue(rule: Rule, memory: Memory, now: float) -> Finding | None:
    """Raised when `now` is past the deadline; None while it is not."""
    if "last" not in memory or now < deadline(rule, memory):
        return None
    silent_s = now - memory["last"]
    expected_s = rule.intervals * memory.get("interval", rule.default_interval_s)
    return Finding(rule.severity, f"no reading for {silent_s:.0f} s ({rule.intervals} expected intervals: "
                                  f"{expected_s:.0f} s)", silent_s, expected_s)
