"""The readings API behind `/api/v1/readings`: the stored readings of a time range, owned by this domain.

| method | path                                                  | answer                                  |
|--------|-------------------------------------------------------|-----------------------------------------|
| GET    | /api/v1/readings/{meters,sensors}?from=&to=&limit=&after= | every device's readings, one page    |
| GET    | /api/v1/readings/{meters,sensors}/{id}?from=&to=&limit=&after= | one device's readings, one page |

The answer is `{"readings": [...], "next": "<cursor>" | null}`: readings with time in [from, to)
ordered by (time, device id), each the data of com.smartgrid.meter.reading or .sensor.reading as a
device sends it; pass `next` as `after` for the next page (null after the last one). `from` and `to`
are RFC 3339 times with offset (default: the 24 hours before now), `limit` 1-10000 (default 1000).
Other services read the readings here, never from the `smartgrid` database (database per service).
Errors are JSON bodies naming the parameter: 400 bad parameter, 404 unknown path, 405 other methods,
503 when the database is unavailable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.http import downstream_failure, json_error, probe
from shared.params import BadParameter, time_param
from shared.readings.query import KINDS, Cursor, ReadingQuery
from shared.resilience import Downstream, Downstreams
from shared.stores import postgres
from shared.stores.postgres import Database

PREFIX = "/api/v1/readings"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
DEFAULT_RANGE = timedelta(days=1)
_ROUTE = re.compile(rf"^{PREFIX}/(?P<kind>meters|sensors)(?:/(?P<id>[^/]+))?/?$")


@dataclass(frozen=True)
class PageRequest:
    """A request's time range [start, end), page size and cursor."""

    start: datetime
    end: datetime
    limit: int
    after: Cursor | None


class ReadingsApi:
    """Answers the readings API's requests; reads go through the database's downstream (retries, breaker)."""

    def __init__(self, query: ReadingQuery, *, database: Downstream) -> None:
        self._query = query
        self._database = database

    async def __call__(self, request: Request) -> Response:
        """Answer one request (a GET outside the API is a probe: /healthz, /metrics)."""
        path = request.url.path
        match = _ROUTE.match(path)
        if match is None:
            if request.method == "GET" and not path.startswith(PREFIX):
                return probe(request)
            return json_error(404, "not found", f"expected {PREFIX}/{{meters|sensors}}[/{{id}}], found {path}",
                              field="path")
        if request.method != "GET":
            return json_error(405, "method not allowed", f"expected GET, found {request.method}", field="method")
        try:
            wanted = page_request(request.query_params, datetime.now(UTC))
        except BadParameter as error:
            return json_error(400, "bad request", str(error), field=error.field)
        kind = KINDS[match["kind"]]
        try:
            page = await self._database.call(
                lambda: self._query.page(kind, wanted.start, wanted.end, wanted.limit, after=wanted.after,
                                         device=match["id"]), what="read readings")
        except Exception as error:
            answer = downstream_failure(error, path=path)
            if answer is None:
                raise
            return answer
        body = {"readings": page.readings, "next": None if page.next is None else page.next.encode()}
        return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


def page_request(params: Any, now: datetime) -> PageRequest:
    """The time range, limit and cursor of a request's parameters; raises BadParameter naming one."""
    end = time_param(params, "to") or now
    start = time_param(params, "from") or end - DEFAULT_RANGE
    if start >= end:
        raise BadParameter("from", f"expected a time before to ({end.isoformat()}), found {start.isoformat()}")
    text = params.get("limit", str(DEFAULT_LIMIT))
    limit = int(text) if text.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"expected a whole number from 1 to {MAX_LIMIT}, found {text!r}")
    after = params.get("after")
    try:
        return PageRequest(start, end, limit, None if after is None else Cursor.decode(after))
    except ValueError as error:
        raise BadParameter("after", str(error)) from None


def readings_api(settings: Settings) -> ReadingsApi:
    """The API over one pool on the `smartgrid` database, behind the downstream `postgres:smartgrid`."""
    database = Downstreams.from_settings(settings).get("postgres:smartgrid", postgres.is_transient)
    return ReadingsApi(ReadingQuery(Database(settings.dsn("smartgrid"), max_size=4)), database=database)
