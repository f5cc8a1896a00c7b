"""A route's `corsPolicy`, answered like Envoy's CORS filter.

A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) from an origin that
`allowOrigins` matches is answered by the gateway itself: 200 with `Access-Control-Allow-Origin` (the
origin), `-Allow-Methods`, `-Allow-Headers`, `-Max-Age` and `-Allow-Credentials` as configured. A
preflight from any other origin is forwarded like any request (`unmatchedPreflights: FORWARD`, the
default) and its answer carries no CORS header, so the browser refuses; `IGNORE` answers it 200 without
CORS headers instead. A request (not a preflight) from an allowed origin gets `Access-Control-Allow-Origin`,
`-Expose-Headers` and `-Allow-Credentials` on its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from local.gateway.matching import StringMatch
from local.gateway.spec import Node


@dataclass(frozen=True)
class CorsPolicy:
    """One route's CORS settings."""

    origins: tuple[StringMatch, ...]
    methods: str = ""
    headers: str = ""
    expose: str = ""
    max_age: str = ""
    credentials: bool = False
    forward_unmatched: bool = True

    def allows(self, origin: str) -> bool:
        return any(match.exact == "*" or match.matches(origin) for match in self.origins)

    def preflight_headers(self, origin: str) -> dict[str, str]:
        """The headers of the gateway's answer to an allowed preflight."""
        answer = {"Access-Control-Allow-Origin": origin}
        if self.methods:
            answer["Access-Control-Allow-Methods"] = self.methods
        if self.headers:
            answer["Access-Control-Allow-Headers"] = self.headers
        if self.max_age:
            answer["Access-Control-Max-Age"] = self.max_age
        if self.credentials:
            answer["Access-Control-Allow-Credentials"] = "true"
        return answer

    def response_headers(self, origin: str) -> dict[str, str]:
        """The headers added to an answer to a (non-preflight) request from an allowed origin."""
        answer = {"Access-Control-Allow-Origin": origin}
        if self.expose:
            answer["Access-Control-Expose-Headers"] = self.expose
        if self.credentials:
            answer["Access-Control-Allow-Credentials"] = "true"
        return answer


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def parse_cors(node: Node) -> CorsPolicy:
    fields = node.fields(("allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge",
                          "allowCredentials", "unmatchedPreflights"))
    origins = tuple(StringMatch.parse(item) for item in fields["allowOrigins"].items()) \
        if "allowOrigins" in fields else ()
    if not origins:
        raise node.error("expected allowOrigins with at least one origin, found none")

    def joined(key: str) -> str:
        return ",".join(fields[key].texts()) if key in fields else ""

    max_age = str(round(fields["maxAge"].duration())) if "maxAge" in fields else ""
    forward = fields["unmatchedPreflights"].one_of(("FORWARD", "IGNORE")) == "FORWARD" \
        if "unmatchedPreflights" in fields else True
    return CorsPolicy(origins, joined("allowMethods"), joined("allowHeaders"), joined("exposeHeaders"), max_age,
                      fields["allowCredentials"].flag() if "allowCredentials" in fields else False, forward)
