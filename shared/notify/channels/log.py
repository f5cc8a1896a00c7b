"""The log channel: each notification is one log record (logger `smartgrid.notify`), always delivered."""

from __future__ import annotations

import logging

from shared.notify.message import Notification

log = logging.getLogger("smartgrid.notify")


class LogChannel:
    """Writes each notification to the function's log."""

    kind = "log"

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, notification: Notification, recipient: str) -> None:
        """Log the notification's subject for `recipient`."""
        log.warning("notify %s via %s: %s", recipient, self.name, notification.subject)

    async def close(self) -> None:
        """Nothing to release."""
