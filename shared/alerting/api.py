"""The alert API behind `/api/v1/alerts`: list with filters, one alert, its history, acknowledge, clear.

| method | path                                   | answer                                          |
|--------|----------------------------------------|-------------------------------------------------|
| GET    | /api/v1/alerts?status=&severity=&feeder=&rule=&device=&since=&until=&limit= | alerts, newest first |
| GET    | /api/v1/alerts/{id}                    | one alert                                       |
| GET    | /api/v1/alerts/{id}/history            | its changes, oldest first                       |
| POST   | /api/v1/alerts/{id}/acknowledge        | the acknowledged alert; 409 unless open         |
| POST   | /api/v1/alerts/{id}/clear              | the cleared alert; 409 when cleared             |

The operator recorded for an acknowledge or clear is the subject of the caller's verified token (the
guard sets `request.state.principal`), never a field of the body; each is reported to the audit log.

`status` is open (default: not cleared), acknowledged, cleared or all; times are RFC 3339. Errors are
JSON bodies naming the field: 400 bad parameter, 404 unknown alert or path, 409 wrong status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.alerting.operations import AlertClosed, AlertOperations, UnknownAlert
from shared.alerting.rules import SEVERITIES
from shared.alerting.store import AlertFilter, AlertStore
from shared.audit.chain import AuditEntry
from shared.audit.events import UNREPORTED, AuditReporter
from shared.http import downstream_failure, json_error
from shared.params import BadParameter, time_param
from shared.resilience import Downstream

log = logging.getLogger("smartgrid.alerting")

PREFIX = "/api/v1/alerts"
SOURCE = "/smartgrid/functions/alerts"
STATUSES = ("open", "acknowledged", "cleared", "all")
MAX_LIMIT = 1000
_ROUTES = re.compile(rf"^{PREFIX}(?:/(?P<id>[^/]+)(?:/(?P<action>history|acknowledge|clear))?)?/?$")


class AlertApi:
    """Answers the alert API's requests; reads go through the database's downstream (retries, breaker)."""

    def __init__(self, alerts: AlertStore, operations: AlertOperations, *, database: Downstream,
                 audit: AuditReporter) -> None:
        self._alerts = alerts
        self._operations = operations
        self._database = database
        self._audit = audit

    async def __call__(self, request: Request) -> Response:
        """Route one request."""
        match = _ROUTES.match(request.url.path)
        if match is None:
            return _not_found(request)
        alert_id, action = match["id"], match["action"]
        handler: Callable[[], Awaitable[Any]] | None = None
        if request.method == "GET" and alert_id is None:
            handler = lambda: self._list(request.query_params)  # noqa: E731
        elif request.method == "GET" and action is None:
            handler = lambda: self._read(lambda: self._one(alert_id))  # noqa: E731
        elif request.method == "GET" and action == "history":
            handler = lambda: self._read(lambda: self._history(alert_id))  # noqa: E731
        elif request.method == "POST" and action in ("acknowledge", "clear"):
            handler = lambda: self._operate(action, alert_id, request)  # noqa: E731
        if handler is None:
            return json_error(405, "method not allowed", f"expected another method for {request.url.path}, "
                                                         f"found {request.method}", field="method")
        try:
            return _json(await handler())
        except BadParameter as error:
            return json_error(400, "bad request", str(error), field=error.field)
        except UnknownAlert as error:
            return json_error(404, "unknown alert", str(error), field="alert_id")
        except AlertClosed as error:
            return json_error(409, "alert status", str(error), field="status")
        except Exception as error:
            answer = downstream_failure(error, path=request.url.path)
            if answer is None:
                raise
            return answer

    async def _read(self, read: Callable[[], Awaitable[Any]]) -> Any:
        return await self._database.call(read, what="read alerts")

    async def _list(self, params: Any) -> list[dict[str, Any]]:
        where = alert_filter(params)
        return await self._read(lambda: self._alerts.list(where))

    async def _one(self, alert_id: str) -> dict[str, Any]:
        alert = await self._alerts.get(alert_id)
        if alert is None:
            raise UnknownAlert(f"expected a known alert id, found {alert_id!r}")
        return alert

    async def _history(self, alert_id: str) -> list[dict[str, Any]]:
        await self._one(alert_id)
        return await self._alerts.history(alert_id)

    async def _operate(self, action: str, alert_id: str, request: Request) -> dict[str, Any]:
        actor = request.state.principal.subject
        operate = self._operations.acknowledge if action == "acknowledge" else self._operations.clear
        alert = await operate(alert_id, actor)
        entry = AuditEntry(actor, f"alert.{action}", "success", SOURCE, alert_id, {"rule": str(alert.get("rule_id"))})
        try:
            await self._audit.report(entry)
        except Exception as error:  # done already: the answer stays 200, the missing entry is logged and counted
            UNREPORTED.inc()
            log.error("audit entry of %s not reported: %s", entry, error)
        return alert


def alert_filter(params: Any) -> AlertFilter:
    """The filter of a list request's query parameters; raises BadParameter naming one."""
    status = params.get("status", "open")
    if status not in STATUSES:
        raise BadParameter("status", f"expected one of {', '.join(STATUSES)}, found {status!r}")
    severity = params.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise BadParameter("severity", f"expected one of {', '.join(SEVERITIES)}, found {severity!r}")
    return AlertFilter(
        status=None if status == "all" else status, severity=severity, feeder_id=params.get("feeder"),
        rule_id=params.get("rule"), device_id=params.get("device"),
        since=time_param(params, "since"), until=time_param(params, "until"), limit=_limit(params),
    )


def _limit(params: Any) -> int:
    text = params.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadParameter("limit", f"expected a whole number from 1 to {MAX_LIMIT}, found {text!r}")
    return int(text)


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


def _not_found(request: Request) -> Response:
    return json_error(404, "not found", f"expected a path under {PREFIX}, found {request.url.path}", field="path")
