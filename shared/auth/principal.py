"""Who a verified access token speaks for, and the names of roles and client kinds.

A token's `sub` is a user's name, a device's id or a platform service's client id; `kind` says
which (the `smartgrid_kind` claim), `roles` its roles (users: one of USER_ROLES; platform services:
SERVICE_ROLES), `device_kind` the kind of a device (sensor, meter, gateway).
"""

from __future__ import annotations

from dataclasses import dataclass

USER_ROLES = ("admin", "operator", "analyst", "viewer")
# A platform service may read the device registry; the eventing data plane delivers events.
SERVICE_ROLES = ("registry-reader", "eventing", "admin", "analyst")
DEVICE_KINDS = ("sensor", "meter", "gateway")


@dataclass(frozen=True)
class Principal:
    """The caller a verified token names."""

    subject: str
    kind: str
    roles: frozenset[str]
    device_kind: str | None = None

    def has_any(self, roles: frozenset[str]) -> bool:
        """True when this caller holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)
