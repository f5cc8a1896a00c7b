"""`flatline` rules: a metric whose value has not changed (within `tolerance`) for `duration`."""

from __future__ import annotations

from shared.alerting.conditions import Context, Finding, Memory
from shared.alerting.observations import Observation
from shared.alerting.rules import Rule


def evaluate(rule: Rule, observation: Observation, memory: Memory, current: str | None, context: Context) -> Finding | None:
    """Raised once every channel of the metric kept its value for `duration_s`; cleared when one moves."""
    channels = observation.channels(rule.metric or "")
    if not channels:
        return None
    values = [channels[name] for name in sorted(channels)]
    previous = memory.get("values")
    unchanged = previous is not None and len(previous) == len(values) and all(
        abs(value - before) <= rule.tolerance for value, before in zip(values, previous)
    )
    if not unchanged:
        memory.update(values=values, since=observation.at)
        return Finding(None, f"{rule.metric} changed", values[0])
    flat_s = observation.at - memory["since"]
    if flat_s < rule.duration_s:
        return Finding(None, f"{rule.metric} unchanged for {flat_s:.0f} s", flat_s, rule.duration_s)
    return Finding(rule.severity, f"{rule.metric} flat at {values[0]:g} for {flat_s / 3600:.1f} h",
                   flat_s, rule.duration_s)
