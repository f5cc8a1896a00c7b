"""ingest: the device-facing endpoint.

A request needs a device's or gateway's access token (`Authorization: Bearer`, client_credentials
at the users service): 401 without a valid one (or for a revoked device), 403 naming the field when an
event is not the device's own (a gateway: meters registered behind it) or of a type devices may not
send. CloudEvents in binary, structured or batch mode are checked against the event catalogue; valid
ones go to the broker (K_SINK) keyed by device, invalid ones are answered 400 with the event and field
named. 202 only once the broker took every valid event; 503 to retry.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.audit.chain import AuditEntry
from shared.auth.guard import AccessRefused
from shared.auth.registry import RegistryUnavailable
from shared.auth.wiring import audit_reporter, device_registry, function_guard
from shared.config import Settings
from shared.http import circuit_open, json_error, probe
from shared.ingest import Ingestor
from shared.readings.senders import SenderRefused, Senders
from shared.resilience import CircuitOpen, Downstreams
from shared.sink import EventSink, SinkUnavailable
from shared.validation.catalogue import Catalogue

SOURCE = "/smartgrid/functions/ingest"
settings = Settings.from_env()
downstreams = Downstreams.from_settings(settings)
reporter = audit_reporter(settings, SOURCE)
guard = function_guard(settings, SOURCE, reporter=reporter)
senders = Senders(device_registry(settings, downstreams))
ingestor = Ingestor(Catalogue.load(), EventSink(settings.require_sink(), downstreams), senders)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Check the sender, then check and forward the request's events."""
    answer = probe(request)
    if answer is not None:
        return answer
    principal = None
    try:
        principal = await guard.authenticate(request)
        device = await senders.sender(principal)
        body = await request.body()
        if len(body) > settings.max_event_bytes:
            return json_error(400, "event too large", f"expected at most {settings.max_event_bytes} bytes, "
                              f"found {len(body)}", field="body")
        report = await ingestor.ingest_http(request.headers, body, device)
    except SenderRefused as refused:
        reporter.fire(AuditEntry(principal.subject if principal else "anonymous", "ingest.refused", "failure",
                                 SOURCE, refused.field, {"reason": str(refused)}))
        return refused.response()
    except AccessRefused as refused:
        return refused.response()
    except (SinkUnavailable, RegistryUnavailable) as error:
        return json_error(503, "downstream unavailable", str(error))
    except CircuitOpen as error:
        return circuit_open(error)
    return JSONResponse(report.to_dict(), status_code=report.status)
