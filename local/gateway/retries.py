"""A route's retry policy (`retries` of a VirtualService http route), with Istio's defaults.

`attempts` counts retries (not tries). Without `retries`, Istio retries twice on `connect-failure`,
`refused-stream` and status 503 (`retriable-status-codes`, plus the gRPC conditions `unavailable` and
`cancelled`, which an HTTP/1.1 answer never meets); `attempts: 0` disables retries. The conditions the
local gateway supports in `retryOn`:

| condition | retried when |
|---|---|
| `5xx` | any 5xx answer, a connect failure, a reset/disconnect, a per-try timeout |
| `gateway-error` | 502, 503, 504, a connect failure, a reset/disconnect, a per-try timeout |
| `connect-failure` | the connection to the destination fails |
| `refused-stream` | an HTTP/2 REFUSED_STREAM (never over the local HTTP/1.1 hop) |
| `reset` | a reset/disconnect or no answer within the per-try timeout |
| `retriable-4xx` | 409 |
| `retriable-status-codes`, and status codes such as `503` | the listed codes |

Any other condition (gRPC's, `envoy-ratelimited`, `retriable-headers`, ...) is refused at start.
Between tries Envoy's backoff: full jitter over 25 ms doubling per retry, at most 250 ms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from local.gateway.spec import Node

_BASE_BACKOFF_S = 0.025
_MAX_BACKOFF_S = 0.25
SUPPORTED = ("5xx", "gateway-error", "connect-failure", "refused-stream", "reset", "retriable-4xx",
             "retriable-status-codes")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and on what to try again."""

    attempts: int
    per_try_timeout_s: float | None = None
    statuses: frozenset[int] = frozenset()
    on_connect_failure: bool = False
    on_reset: bool = False

    def retries_status(self, status: int) -> bool:
        return status in self.statuses

    @staticmethod
    def backoff_s(retry: int) -> float:
        """The wait before retry number `retry` (1-based)."""
        return random.uniform(0, min(_MAX_BACKOFF_S, _BASE_BACKOFF_S * 2 ** (retry - 1)))


DEFAULT = RetryPolicy(2, statuses=frozenset({503}), on_connect_failure=True)
NONE = RetryPolicy(0)


def parse_retries(node: Node | None) -> RetryPolicy:
    """The policy of a route's `retries` (absent: Istio's default)."""
    if node is None:
        return DEFAULT
    fields = node.fields(("attempts", "perTryTimeout", "retryOn"))
    attempts = fields["attempts"].integer() if "attempts" in fields else 0
    if attempts == 0:
        return NONE
    per_try = fields["perTryTimeout"].duration() if "perTryTimeout" in fields else None
    if "retryOn" not in fields:
        return RetryPolicy(attempts, per_try, DEFAULT.statuses, on_connect_failure=True)
    statuses: set[int] = set()
    connect = reset = False
    for condition in (part.strip() for part in fields["retryOn"].text().split(",")):
        if condition.isdigit():
            statuses.add(int(condition))
        elif condition == "5xx":
            statuses.update(range(500, 600))
            connect = reset = True
        elif condition == "gateway-error":
            statuses.update((502, 503, 504))
            connect = reset = True
        elif condition == "connect-failure":
            connect = True
        elif condition == "reset":
            reset = True
        elif condition == "retriable-4xx":
            statuses.add(409)
        elif condition not in ("refused-stream", "retriable-status-codes"):
            raise fields["retryOn"].error(
                f"retry condition {condition!r} not supported by the local gateway (supported: {', '.join(SUPPORTED)}"
                ", and status codes)")
    return RetryPolicy(attempts, per_try, frozenset(statuses), connect, reset)
