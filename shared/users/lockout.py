"""Brute-force detection, after Keycloak's: failed logins counted per user and per client address.

Once a counter reaches its limit, every further failure locks for `wait_increment_s × 2^(n − limit)`
(n the failures so far), at most `max_wait_s`. While locked, a login fails whatever the password.
A counter starts again from zero `reset_s` after its last failure; a successful login resets the
user's counter (not the address's, which a spray over many accounts would otherwise reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    """Limits and delays of the lockout."""

    user_limit: int = 5
    address_limit: int = 20
    wait_increment_s: float = 60.0
    max_wait_s: float = 900.0
    reset_s: float = 12 * 3600.0

    def failures_after(self, failures: int, last_failure: datetime | None, now: datetime) -> int:
        """The counter after one more failure at `now` (restarted when the last one is `reset_s` old)."""
        if last_failure is not None and (now - last_failure).total_seconds() > self.reset_s:
            failures = 0
        return failures + 1

    def locked_until(self, failures: int, limit: int, now: datetime) -> datetime | None:
        """When a counter of `failures` against `limit` stops locking; None when it does not lock."""
        if failures < limit:
            return None
        wait = min(self.max_wait_s, self.wait_increment_s * 2 ** (failures - limit))
        return now + timedelta(seconds=wait)
