"""Routing: which routes of the channels file an alert event takes, and so which channel chains and recipients."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from shared.notify.alerts import AlertEvent
from shared.notify.config import Route


@dataclass(frozen=True)
class Target:
    """One recipient and the channels that may carry its notification, in failover order."""

    chain: tuple[str, ...]
    recipient: str

    @property
    def primary(self) -> str:
        """The channel tried first."""
        return self.chain[0]


def _glob_match(patterns: Iterable[str], value: str | None) -> bool:
    """True when a glob pattern matches `value`; an absent value matches only patterns such as `*`."""
    return any(fnmatchcase(value or "", pattern) for pattern in patterns)


def route_matches(route: Route, alert: AlertEvent) -> bool:
    """True when `route` takes this alert event: its kind, severity, feeder and region."""
    return (
        alert.kind in route.events
        and alert.severity in route.severities
        and _glob_match(route.feeders, alert.feeder_id)
        and _glob_match(route.regions, alert.region)
    )


def targets(routes: Iterable[Route], alert: AlertEvent) -> list[Target]:
    """The targets of every route that takes `alert`, each (chain, recipient) once, in file order."""
    found: dict[Target, None] = {}
    for route in routes:
        if route_matches(route, alert):
            found.update(dict.fromkeys(Target(route.channels, recipient) for recipient in route.recipients))
    return list(found)
