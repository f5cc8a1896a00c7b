"""Query parameters of the HTTP APIs: the error naming one, and RFC 3339 times."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class BadParameter(ValueError):
    """Raised for a query parameter or body field of the wrong form; names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def time_param(params: Any, name: str) -> datetime | None:
    """The RFC 3339 time (with offset) of parameter `name`, None when absent; raises BadParameter."""
    text = params.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadParameter(name, f"expected an RFC 3339 time with offset (2026-11-22T10:00:00Z), found {text!r}")
    return value
