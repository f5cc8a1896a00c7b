"""The role x route matrix (shared/auth/policy.py), the lockout delays, and the README's matrix table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.auth.policy import EVENT_DELIVERY, FORECAST_JOB, RULES, allowed_roles
from shared.users.lockout import LockoutPolicy

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(("method", "path", "roles"), [
    ("GET", "/api/v1/alerts", {"viewer", "operator", "analyst", "admin"}),
    ("GET", "/api/v1/alerts/a-1/history", {"viewer", "operator", "analyst", "admin"}),
    ("POST", "/api/v1/alerts/a-1/acknowledge", {"operator", "admin"}),
    ("POST", "/api/v1/alerts/a-1/clear", {"operator", "admin"}),
    ("DELETE", "/api/v1/alerts/a-1", set()),
    ("GET", "/api/v1/analytics/meters/m-1", {"viewer", "operator", "analyst", "admin"}),
    ("GET", "/api/v1/forecasts/feeders/f-1", {"viewer", "operator", "analyst", "admin"}),
    ("GET", "/api/v1/readings/meters", {"analyst", "admin"}),
    ("POST", "/api/v1/readings/meters", set()),
    ("GET", "/api/v1/users", {"admin"}),
    ("PATCH", "/api/v1/users/alice", {"admin"}),
    ("GET", "/api/v1/devices/gw-1", {"admin", "registry-reader"}),
    ("DELETE", "/api/v1/devices/gw-1", {"admin"}),
    ("GET", "/api/v1/audit", {"admin"}),
    ("POST", "/", set()),
    ("GET", "/api/v1/alertsXYZ", set()),
])
def test_allowed_roles(method: str, path: str, roles: set[str]) -> None:
    assert allowed_roles(method, path) == roles


def test_event_deliveries_and_forecast_jobs() -> None:
    assert allowed_roles("POST", "/", RULES + (EVENT_DELIVERY,)) == {"eventing"}
    assert allowed_roles("POST", "/", RULES + (FORECAST_JOB,)) == {"eventing", "admin"}


def test_no_rule_lets_a_device_call_an_api() -> None:
    assert all("device" not in rule.roles for rule in RULES + (EVENT_DELIVERY, FORECAST_JOB))


def test_the_readme_matrix_is_the_policy() -> None:
    """Each row of the README's access table names a rule's method, path and roles."""
    section = README.read_text().split("### Who may call what", 1)[1]
    table = next(block for block in section.split("\n\n") if block.startswith("|"))
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    documented = [(method, path.strip("`"), ", ".join(sorted(re.split(r",\s*", roles))), what)
                  for method, path, roles, what in rows]
    assert documented == [(rule.method, rule.path, ", ".join(sorted(rule.roles)), rule.what)
                          for rule in RULES + (EVENT_DELIVERY, FORECAST_JOB)]


def test_the_lock_doubles_with_each_failure_up_to_the_maximum() -> None:
    policy, now = LockoutPolicy(user_limit=3, wait_increment_s=60, max_wait_s=900), datetime.now(UTC)
    waits = [policy.locked_until(n, 3, now) for n in range(1, 9)]
    assert waits[:2] == [None, None]
    assert [(w - now).total_seconds() for w in waits[2:]] == [60, 120, 240, 480, 900, 900]
    assert policy.failures_after(7, now - timedelta(hours=13), now) == 1, "counting restarts after reset_s"
    assert policy.failures_after(7, now - timedelta(hours=1), now) == 8
