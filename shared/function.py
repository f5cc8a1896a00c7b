"""The one shape of a function's HTTP handler: probes open, its API and event deliveries behind the guard.

- a request under the function's API prefix goes to its API, behind the guard (token, role matrix);
- any other GET is a probe: `/metrics`, else readiness and liveness (`{"status": "ok"}`), unauthenticated
  (on a cluster the mesh lets only the kubelet and Prometheus reach them);
- any other request is an event delivery (POST to the Service's URL), behind the guard (the data
  plane's token: shared/auth/policy.py EVENT_DELIVERY); a function without events answers 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared.auth.guard import Guard, Handler
from shared.http import json_error, probe


def entry_point(guard: Guard, *, events: Handler | None = None, api: Handler | None = None,
                api_prefix: str | None = None) -> Handler:
    """The handler of a function that receives `events` and/or serves `api` under `api_prefix`."""
    guarded_api = guard.protect(api) if api is not None else None
    guarded_events = guard.protect(events) if events is not None else None

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
