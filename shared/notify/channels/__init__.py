"""Notification channels: webhook (signed HTTP POST), smtp (mail) and log, built from the channels file."""

from __future__ import annotations

from shared.config import Settings
from shared.notify.channels.base import (
    Channel,
    ChannelError,
    ChannelRefused,
    ChannelUnavailable,
    is_unavailable,
)
from shared.notify.channels.log import LogChannel
from shared.notify.channels.mail import MailChannel, SmtpServer
from shared.notify.channels.webhook import WebhookChannel, downstream_name
from shared.notify.config import NotifyConfig
from shared.resilience import Downstreams

__all__ = ["Channel", "ChannelError", "ChannelRefused", "ChannelUnavailable", "build_channels"]


def build_channels(config: NotifyConfig, settings: Settings, downstreams: Downstreams) -> dict[str, Channel]:
    """Channel name -> channel; every outbound one calls through its Downstream (`webhook:<host:port>`, `smtp`)."""
    channels: dict[str, Channel] = {}
    for name, spec in config.channels.items():
        if spec.kind == "webhook":
            assert spec.url is not None and settings.webhook_secret is not None  # checked by the loader
            channels[name] = WebhookChannel(name, spec.url, settings.webhook_secret,
                                            downstreams.get(downstream_name(spec.url), is_unavailable),
                                            timeout_s=spec.timeout_s)
        elif spec.kind == "smtp":
            assert settings.smtp_url is not None  # checked by the loader
            channels[name] = MailChannel(name, SmtpServer.from_url(settings.smtp_url), settings.mail_from,
                                         downstreams.get("smtp", is_unavailable), timeout_s=spec.timeout_s)
        else:
            channels[name] = LogChannel(name)
    return channels
