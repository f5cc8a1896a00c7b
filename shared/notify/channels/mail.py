"""The mail channel: each notification is one SMTP message (aiosmtplib) to one recipient, text and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiosmtplib
import orjson

from shared.config import ConfigError
from shared.notify.channels.base import ChannelRefused, ChannelUnavailable
from shared.notify.message import Notification
from shared.resilience import Downstream

_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes: SMARTGRID_SMTP_URL, `smtp://[user:password@]host:port` (`smtps://` for implicit TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse the URL; raises ConfigError naming SMARTGRID_SMTP_URL."""
        invalid = ConfigError(f"SMARTGRID_SMTP_URL: expected smtp://[user:password@]host:port, found {url!r}")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise invalid from None
        if parts.scheme not in _PORTS or not parts.hostname:
            raise invalid
        return cls(
            host=parts.hostname,
            port=port or _PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
        )


def _failure(error: aiosmtplib.SMTPException) -> ChannelUnavailable | ChannelRefused:
    """4xx answers, timeouts and lost connections are worth another try; 5xx answers are final."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
    elif isinstance(error, aiosmtplib.SMTPResponseException):
        codes = [error.code]
    else:
        codes = []
    message = f"SMTP: {error}"
    if all(400 <= code < 500 for code in codes):
        return ChannelUnavailable(message)
    return ChannelRefused(message)


class MailChannel:
    """Sends each notification as a multipart message (text, and the JSON a webhook would get)."""

    kind = "smtp"

    def __init__(self, name: str, server: SmtpServer, sender: str, downstream: Downstream, *,
                 timeout_s: float = 10.0) -> None:
        self.name = name
        self.server = server
        self._sender = sender
        self._downstream = downstream
        self._timeout_s = timeout_s

    async def send(self, notification: Notification, recipient: str) -> None:
        """Send one message to `recipient`; raises ChannelUnavailable, ChannelRefused or CircuitOpen."""
        message = self.message(notification, recipient)
        await self._downstream.call(lambda: self._send(message),
                                    what=f"mail {notification.kind} notification to {recipient}")

    def message(self, notification: Notification, recipient: str) -> EmailMessage:
        """The message: subject, text body, the JSON payload attached; its Message-ID is the notification id."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = recipient
        message["Subject"] = notification.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{notification.notification_id(self.name, recipient)}@smartgrid>"
        message["X-Smartgrid-Alert-Id"] = notification.key
        message.set_content(notification.text)
        message.add_attachment(orjson.dumps(notification.payload(self.name, recipient), option=orjson.OPT_INDENT_2),
                               maintype="application", subtype="json", filename="notification.json")
        return message

    async def close(self) -> None:
        """Nothing to release: each message opens its own connection."""

    async def _send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message, hostname=self.server.host, port=self.server.port, username=self.server.username,
                password=self.server.password, use_tls=self.server.use_tls, timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPException as error:
            raise _failure(error) from None
        except OSError as error:
            raise ChannelUnavailable(f"SMTP server {self.server.host}:{self.server.port} unreachable: {error}") from None
