"""What every channel offers, and how its failures are told apart: worth another try, or final."""

from __future__ import annotations

from typing import Protocol

from shared.notify.message import Notification


class ChannelError(RuntimeError):
    """Raised when a channel did not deliver a notification."""


class ChannelUnavailable(ChannelError):
    """Raised when the channel's server is unreachable, slow or answered 'try later': retried, counts for its breaker."""


class ChannelRefused(ChannelError):
    """Raised when the channel's server refused the notification for good (retrying cannot help)."""


def is_unavailable(error: BaseException) -> bool:
    """True for a channel failure worth retrying."""
    return isinstance(error, ChannelUnavailable)


class Channel(Protocol):
    """A way to reach recipients: `send` delivers one notification to one recipient or raises."""

    name: str
    kind: str

    async def send(self, notification: Notification, recipient: str) -> None:
        """Deliver `notification` to `recipient`; raises ChannelError or CircuitOpen."""

    async def close(self) -> None:
        """Release connections."""
