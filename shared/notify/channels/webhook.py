"""The webhook channel: each notification is an HTTP POST of JSON, signed with HMAC-SHA256 (shared/notify/signing.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson

from shared.notify.channels.base import ChannelRefused, ChannelUnavailable
from shared.notify.message import Notification
from shared.notify.signing import SIGNATURE_HEADER, sign
from shared.outbound import Poster, Unreachable
from shared.resilience import Downstream

NOTIFICATION_ID_HEADER = "X-Smartgrid-Notification-Id"


def downstream_name(url: str) -> str:
    """The downstream a webhook URL calls: `webhook:<host:port>`."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"webhook:{parts.hostname}:{port}"


class WebhookChannel:
    """POSTs each notification to one URL, signed with the shared secret, through its downstream's breaker."""

    kind = "webhook"

    def __init__(
        self, name: str, url: str, secret: str, downstream: Downstream, *, timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._downstream = downstream
        self._poster = Poster(url, timeout_s=timeout_s)
        self._clock = clock

    async def send(self, notification: Notification, recipient: str) -> None:
        """POST the notification's JSON; raises ChannelUnavailable, ChannelRefused or CircuitOpen."""
        body = orjson.dumps(notification.payload(self.name, recipient))
        notification_id = notification.notification_id(self.name, recipient)
        await self._downstream.call(lambda: self._post(body, notification_id),
                                    what=f"POST {notification.kind} notification to {self.url}")

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._poster.close()

    async def _post(self, body: bytes, notification_id: str) -> None:
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, now=self._clock()),
            NOTIFICATION_ID_HEADER: notification_id,
        }
        try:
            answer = await self._poster.post(body, headers)
        except Unreachable as error:
            raise ChannelUnavailable(f"webhook {error}") from None
        if not answer.ok:
            message = f"webhook {self.url}: expected a 2xx answer, found {answer.status} {answer.text[:200]}"
            raise ChannelUnavailable(message) if answer.retryable else ChannelRefused(message)
