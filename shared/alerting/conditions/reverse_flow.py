"""`reverse_flow` rules: a meter's export register (2.8.0) rising while no generation is registered there."""

from __future__ import annotations

from shared.alerting.conditions import Context, Finding, Memory
from shared.alerting.observations import Observation
from shared.alerting.rules import Rule


def evaluate(rule: Rule, observation: Observation, memory: Memory, current: str | None, context: Context) -> Finding | None:
    """Raised when export grew by at least `min_export_kwh`; cleared after `clear_after` readings without growth."""
    export = observation.export_kwh
    if export is None:
        return None
    if observation.device_id in context.generation:
        memory.clear()
        return Finding(None, "generation is registered at this meter")
    previous = memory.get("export")
    memory["export"] = export
    if previous is None:
        return None
    growth = export - previous  # a counter reset (negative) is no export
    if growth >= rule.min_export_kwh:
        memory["quiet"] = 0
        return Finding(rule.severity, f"export register rose by {growth:.3f} kWh with no registered generation",
                       growth, rule.min_export_kwh)
    memory["quiet"] = memory.get("quiet", 0) + 1
    if current is not None and memory["quiet"] < rule.clear_after:
        return Finding(current, f"no export for {memory['quiet']} reading(s)", max(growth, 0.0), rule.min_export_kwh)
    return Finding(None, f"no export for {memory['quiet']} reading(s)", max(growth, 0.0))
