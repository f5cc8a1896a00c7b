"""`threshold` rules: a metric, optionally averaged over a window, against severity levels with hysteresis."""

from __future__ import annotations

from shared.alerting.conditions import Context, Finding, Memory
from shared.alerting.observations import Observation
from shared.alerting.rules import SEVERITIES, Level, Rule


def evaluate(rule: Rule, observation: Observation, memory: Memory, current: str | None, context: Context) -> Finding | None:
    """The severity the worst channel of the metric holds, after the window mean and the hold time."""
    channels = observation.channels(rule.metric or "")
    if not channels:
        return None
    values = {
        channel: _window_mean(memory, channel, observation.at, value, rule.window_s) if rule.window_s else value
        for channel, value in channels.items()
    }
    held = {channel: level_held(rule.levels, current, value) for channel, value in values.items()}
    channel = max(values, key=lambda name: (_rank(held[name]), abs(values[name] - _middle(rule.levels))))
    value, level = values[channel], held[channel]
    if rule.hold_s and current is None:
        level = _after_hold(memory, level, observation.at, rule.hold_s)
    what = f"{_what(rule, channel)} {value:.3f}"
    if level is None:
        return Finding(None, f"{what} back within limits", value)
    threshold = level.crossed(value)
    side = "below" if value < threshold else "above"
    return Finding(level.severity, f"{what} {side} {threshold:g} ({level.severity})", value, threshold)


def level_held(levels: tuple[Level, ...], current: str | None, value: float) -> Level | None:
    """The highest level `value` holds, given the severity already open: a level entered before is
    kept until the value is back inside its clear limits (hysteresis)."""
    current_rank = _rank_of(current)
    held = None
    for level in levels:
        if level.entered(value) or (_rank_of(level.severity) <= current_rank and not level.left(value)):
            if held is None or _rank_of(level.severity) > _rank_of(held.severity):
                held = level
    return held


def _after_hold(memory: Memory, level: Level | None, at: float, hold_s: float) -> Level | None:
    """`level` once the condition has held for `hold_s` seconds, else None; remembers since when."""
    if level is None:
        memory.pop("since", None)
        return None
    since = memory.setdefault("since", at)
    return level if at - since >= hold_s else None


def _window_mean(memory: Memory, channel: str, at: float, value: float, window_s: float) -> float:
    """The mean of the channel's samples within the last `window_s` seconds, this one included."""
    samples: list[list[float]] = memory.setdefault("window", {}).setdefault(channel or "value", [])
    samples.append([at, value])
    while samples and samples[0][0] <= at - window_s:
        samples.pop(0)
    return sum(sample[1] for sample in samples) / len(samples)


def _what(rule: Rule, channel: str) -> str:
    window = f" {rule.window_s:g} s mean" if rule.window_s else ""
    phase = f" on {channel.upper()}" if channel else ""
    return f"{rule.metric}{window}{phase}"


def _middle(levels: tuple[Level, ...]) -> float:
    """A value inside every level, to rank channels by distance: the first level's centre."""
    first = levels[0]
    if first.low is not None and first.high is not None:
        return (first.low.raise_at + first.high.raise_at) / 2
    return first.low.raise_at if first.low is not None else first.high.raise_at  # type: ignore[union-attr]


def _rank(level: Level | None) -> int:
    return _rank_of(level.severity if level is not None else None)


def _rank_of(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity is not None else -1
