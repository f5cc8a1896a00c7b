"""Who may call what: the one role x route matrix of every API (the README's table is tested against it).

A request is allowed when a rule matches its method and path and the caller holds one of the rule's
roles; no matching rule denies it (deny by default). Users hold one role of USER_ROLES; platform
services hold SERVICE_ROLES; devices hold `device`, which no API rule lists (devices only send to
`ingest`, which checks them itself: shared/ingest_access.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READERS = frozenset({"viewer", "operator", "analyst", "admin"})
OPERATORS = frozenset({"operator", "admin"})
ANALYSTS = frozenset({"analyst", "admin"})
ADMINS = frozenset({"admin"})


@dataclass(frozen=True)
class Rule:
    """Callers holding one of `roles` may call `method` (or any, "*") on paths matching `path` (a regex)."""

    method: str
    path: str
    roles: frozenset[str]
    what: str

    def matches(self, method: str, path: str) -> bool:
        """True when this rule speaks of `method` on `path`."""
        return self.method in ("*", method) and re.fullmatch(self.path, path) is not None


RULES: tuple[Rule, ...] = (
    Rule("GET", r"/api/v1/alerts(/.*)?", READERS, "read alerts and their history"),
    Rule("POST", r"/api/v1/alerts/[^/]+/acknowledge", OPERATORS, "acknowledge an alert (the token's subject is the actor)"),
    Rule("POST", r"/api/v1/alerts/[^/]+/clear", OPERATORS, "clear an alert (the token's subject is the actor)"),
    Rule("GET", r"/api/v1/analytics(/.*)?", READERS, "read analytics"),
    Rule("GET", r"/api/v1/forecasts(/.*)?", READERS, "read forecasts and model versions"),
    Rule("GET", r"/api/v1/readings(/.*)?", ANALYSTS, "read stored readings"),
    Rule("GET", r"/api/v1/devices/[^/]+", ADMINS | {"registry-reader"}, "read one device of the registry"),
    Rule("*", r"/api/v1/users(/.*)?", ADMINS, "manage users"),
    Rule("*", r"/api/v1/devices(/.*)?", ADMINS, "register, list and revoke devices"),
    Rule("GET", r"/api/v1/audit/?", ADMINS, "read the audit log"),
)

# Event deliveries to a subscriber's root path: the data plane's token (Knative Eventing's OIDC
# delivery); the forecast jobs also run when an admin posts the ping.
EVENT_DELIVERY = Rule("POST", r"/", frozenset({"eventing"}), "deliver an event (the eventing data plane)")
FORECAST_JOB = Rule("POST", r"/", ADMINS | {"eventing"}, "run a forecast job (its PingSource or an admin)")


def allowed_roles(method: str, path: str, rules: tuple[Rule, ...] = RULES) -> frozenset[str]:
    """The roles that may call `method` on `path`: those of every matching rule (empty: nobody)."""
    roles: frozenset[str] = frozenset()
    for rule in rules:
        if rule.matches(method, path):
            roles |= rule.roles
    return roles
