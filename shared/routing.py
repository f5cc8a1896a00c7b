"""One router for the functions' HTTP APIs: Starlette's `Route` matching, with one JSON 404 and 405 rule.

functions-framework hands a function one Request; `Routes` finds the Route whose path and method
match (Starlette's own `Route.matches`, path parameters in `request.path_params`) and awaits its
endpoint. A path no route knows answers 404 naming `path`; a known path with another method 405
naming `method`.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from shared.http import json_error


class Routes:
    """Dispatches requests to a list of Starlette Routes."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    async def __call__(self, request: Request) -> Response:
        """The endpoint's answer, or the 404 or 405 error."""
        allowed: list[str] = []
        for route in self._routes:
            match, child_scope = route.matches(request.scope)
            if match is Match.FULL:
                return await route.endpoint(Request({**request.scope, **child_scope}, request.receive))
            if match is Match.PARTIAL:
                allowed += sorted(route.methods or ())
        path = request.url.path
        if allowed:
            return json_error(405, "method not allowed", f"expected {', '.join(dict.fromkeys(allowed))} for {path}, "
                                                         f"found {request.method}", field="method")
        return json_error(404, "not found", f"expected a path of this API, found {path}", field="path")
