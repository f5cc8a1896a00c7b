"""Mail: `SMARTGRID_SMTP_URL` when set, else a local SMTP sink (aiosmtpd) keeping every message in a Maildir.

The sink accepts any sender and recipient, without authentication, on 127.0.0.1 only, and stores
each message in `<state_dir>/mail` (a Maildir: one file per message, readable with any mail
client or `read_mail`), with a `Delivered-To` header naming the envelope recipients.
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

from local.servers.process import free_port

MAIL_FOLDER = "mail"


class MaildirHandler:
    """The aiosmtpd handler that delivers each message into one Maildir."""

    def __init__(self, folder: Path) -> None:
        self.maildir = mailbox.Maildir(folder, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message with its envelope recipients; always accepted."""
        delivered_to = f"Delivered-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        self.maildir.add(delivered_to + envelope.original_content)
        return "250 Message accepted for delivery"


@contextmanager
def mail_sink(url: str | None, state_dir: Path) -> Iterator[str]:
    """Yield an SMTP URL: `url` if given, else that of a local sink started here, storing into <state_dir>/mail."""
    if url:
        yield url
        return
    port = free_port()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
    controller = Controller(MaildirHandler(state_dir / MAIL_FOLDER), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def read_mail(state_dir: Path) -> list[EmailMessage]:
    """Every message the local sink stored in <state_dir>/mail, oldest first (by arrival)."""
    folder = state_dir / MAIL_FOLDER
    files = [path for sub in ("new", "cur") if (folder / sub).is_dir() for path in (folder / sub).iterdir()]
    files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
    return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]


def without_password(url: str) -> str:
    """The SMTP URL to show: its password, if any, replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
