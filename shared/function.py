"""The one shape of a function's HTTP handler: probes open, its API and event deliveries behind the guard.

- a request under the function's API prefix goes to its API, behind the guard (token, role matrix:
  shared/auth/policy.py);
- any other GET is a probe: `/metrics`, else readiness and liveness (`{"status": "ok"}`), unauthenticated;
- any other request is an event delivery (a POST to the Service's URL). With SMARTGRID_DELIVERY_AUTH
  `token` (the default, and what `smartgrid up` runs) it needs a token the `delivery` rule allows: the
  data plane's `eventing` client, as Knative Eventing's OIDC delivery does. With `mesh` the function
  leaves deliveries to the mesh: Istio's AuthorizationPolicy admits only the eventing dispatcher's
  service account to POST (Knative's own dispatchers carry no token of this issuer).
A function without events answers other requests 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared.audit.events import AuditReporter
from shared.auth.guard import Handler
from shared.auth.policy import EVENT_DELIVERY, RULES, Rule
from shared.auth.wiring import function_guard
from shared.config import Settings
from shared.http import json_error, probe


def function_handler(settings: Settings, source: str, *, events: Handler | None = None, api: Handler | None = None,
                     api_prefix: str | None = None, delivery: Rule = EVENT_DELIVERY,
                     reporter: AuditReporter | None = None) -> Handler:
    """The handler of a function that receives `events` (allowed by `delivery`) and/or serves `api` under
    `api_prefix`; `source` names the function in the audit entries of refused requests."""
    guard = function_guard(settings, source, RULES + (delivery,), reporter)
    guarded_api = guard.protect(api) if api is not None else None
    guarded_events = events if events is None or settings.delivery_auth == "mesh" else guard.protect(events)

    async def handle(request: Request) -> Response:
        path = request.url.path
        if guarded_api is not None and api_prefix is not None and path.startswith(api_prefix):
            return await guarded_api(request)
        if request.method == "GET":
            return probe(request)
        if guarded_events is not None:
            return await guarded_events(request)
        return json_error(404, "not found", f"expected a path under {api_prefix}, found {path}", field="path")

    return handle
