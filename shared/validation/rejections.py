"""How a rejected event is described to its sender: which event, which field, what was wrong."""

from __future__ import annotations

from typing import Any

from shared.cloudevents import InvalidEvent
from shared.validation.catalogue import UnknownEventType
from shared.validation.validators import InvalidData

Rejectable = InvalidEvent | InvalidData | UnknownEventType


def rejection(error: Rejectable, event_id: str | None = None, event_type: str | None = None) -> dict[str, Any]:
    """The JSON description of one rejected event."""
    described: dict[str, Any]
    if isinstance(error, InvalidEvent):
        described = error.to_dict()
    elif isinstance(error, UnknownEventType):
        described = {"error": "unknown event type", "field": "type", "message": str(error)}
    else:
        field = f"data.{error.path}" if error.path else "data"
        described = {"error": "invalid data", "field": field, "message": error.message}
    if event_id is not None:
        described["event"] = event_id
    if event_type is not None and not isinstance(error, UnknownEventType):
        described["type"] = event_type
    return described
