"""`spike` rules: a metric's z-score against the running mean and deviation of the same slot of the week."""

from __future__ import annotations

import math

from shared.alerting.conditions import Context, Finding, Memory
from shared.alerting.observations import Observation
from shared.alerting.rules import Rule

WEEK_S = 7 * 86400.0
MONDAY_OFFSET_S = 3 * 86400.0  # 1970-01-01 was a Thursday
MIN_STD = 1e-6


def evaluate(rule: Rule, observation: Observation, memory: Memory, current: str | None, context: Context) -> Finding | None:
    """Raised when |z| > raise_z, held while |z| > clear_z; the slot's baseline learns every value."""
    channels = observation.channels(rule.metric or "")
    if not channels:
        return None
    value = sum(channels.values())
    slot = str(int(((observation.at + MONDAY_OFFSET_S) % WEEK_S) // rule.slot_s))
    baseline: list[float] = memory.setdefault("slots", {}).setdefault(slot, [0, 0.0, 0.0])
    count, mean, m2 = baseline
    finding = None
    if count >= rule.min_samples:
        std = max(math.sqrt(m2 / (count - 1)), MIN_STD)
        z = (value - mean) / std
        limit = rule.clear_z if current is not None else rule.raise_z
        severity = rule.severity if abs(z) > limit else None
        finding = Finding(severity, f"{rule.metric} {value:.3f} is {z:+.1f} sigma from its usual {mean:.3f} "
                                    f"at this time of week", z, rule.raise_z)
    _learn(baseline, value)
    return finding


def _learn(baseline: list[float], value: float) -> None:
    """Welford's update of [count, mean, sum of squared deviations]."""
    count = baseline[0] + 1
    delta = value - baseline[1]
    mean = baseline[1] + delta / count
    baseline[:] = [count, mean, baseline[2] + delta * (value - mean)]
