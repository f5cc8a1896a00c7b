"""What operators do to alerts: acknowledge (it stays open until its condition clears) and clear."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.alerting.engine import ACKNOWLEDGED, CLEARED, RuleEngine, Transition
from shared.alerting.outbox import Publisher
from shared.alerting.statestore import StateStore
from shared.alerting.store import AlertStore


class UnknownAlert(LookupError):
    """Raised for an alert id the store does not have."""


class AlertClosed(ValueError):
    """Raised when an operation does not fit the alert's status (e.g. acknowledging a cleared alert)."""


class AlertOperations:
    """Acknowledge and clear alerts: the change is stored, published, and (for a clear) applied to the rule state."""

    def __init__(self, engine: RuleEngine, states: StateStore, alerts: AlertStore, publisher: Publisher,
                 *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._states = states
        self._alerts = alerts
        self._publisher = publisher
        self._clock = clock

    async def acknowledge(self, alert_id: str, actor: str) -> dict[str, Any]:
        """Acknowledge an open alert; raises UnknownAlert or AlertClosed."""
        alert = await self._open_alert(alert_id, expected="open")
        await self._states.enqueue([_transition(alert, ACKNOWLEDGED, self._clock(), actor)])
        await self._publisher.publish()
        return await self._alerts.get(alert_id) or {}

    async def clear(self, alert_id: str, actor: str) -> dict[str, Any]:
        """Clear an alert that is not cleared yet; the rule may raise a new one if its condition persists."""
        alert = await self._open_alert(alert_id, expected="not cleared")
        now = self._clock()

        def close(states: dict) -> list[Transition]:
            transition = self._engine.close(states[alert["device_id"]], alert_id, now, actor)
            return [transition or _transition(alert, CLEARED, now, actor)]

        await self._states.change([alert["device_id"]], close, self._engine.deadline)
        await self._publisher.publish()
        return await self._alerts.get(alert_id) or {}

    async def _open_alert(self, alert_id: str, expected: str) -> dict[str, Any]:
        alert = await self._alerts.get(alert_id)
        if alert is None:
            raise UnknownAlert(f"expected a known alert id, found {alert_id!r}")
        allowed = ("open",) if expected == "open" else ("open", "acknowledged")
        if alert["status"] not in allowed:
            raise AlertClosed(f"expected an alert that is {expected}, found {alert_id!r} {alert['status']}")
        return alert


def _transition(alert: dict[str, Any], change: str, at: float, actor: str) -> Transition:
    """A transition of a stored alert made by an operator."""
    return Transition(change, alert["alert_id"], alert["rule_id"], alert["severity"], alert["device_id"],
                      alert["feeder_id"], alert["region"], at, alert["raised_at"].timestamp(),
                      f"{change} by {actor}", alert["value"], alert["threshold"], actor)
