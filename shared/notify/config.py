"""The channels file (SMARTGRID_CHANNELS_FILE): channels, routes, suppression, rate limits, escalations, digest.

Read once per process into a `NotifyConfig`. Durations are seconds or ISO-8601 (`PT15M`); string
values may hold `${SMARTGRID_WEBHOOK_URL}` or `${SMARTGRID_MAIL_FROM}`, taken from the Settings.
Every error names the file and the field, e.g. `routes[1].channels[0]: expected one of mail, ops,
found str 'pager'`. The README's "Notifications" section shows the format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from shared.alerting.rules import SEVERITIES
from shared.config import Settings, parse_duration

EVENT_KINDS = ("raised", "updated", "acknowledged", "cleared")
CHANNEL_KINDS = ("webhook", "smtp", "log")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
T = TypeVar("T")


class ChannelsFileError(ValueError):
    """Raised when the channels file cannot be used; names the file and the field."""


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: a webhook (its URL), SMTP mail (SMARTGRID_SMTP_URL) or the log."""

    name: str
    kind: str
    url: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Route:
    """Which alert events go to whom: the channels are tried in order until one delivers."""

    name: str
    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    severities: frozenset[str] = frozenset(SEVERITIES)
    events: frozenset[str] = frozenset(EVENT_KINDS)
    feeders: tuple[str, ...] = ("*",)
    regions: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Limit:
    """At most `count` notifications per `window_s` seconds."""

    count: int
    window_s: float


@dataclass(frozen=True)
class Escalation:
    """Who else is told when an alert of these severities stays unacknowledged for `after_s` seconds."""

    name: str
    after_s: float
    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    severities: frozenset[str] = frozenset({"critical", "emergency"})


@dataclass(frozen=True)
class Digest:
    """More than `threshold` notifications to one channel and recipient within `window_s`: one digest instead."""

    threshold: int
    window_s: float


@dataclass(frozen=True)
class NotifyConfig:
    """The whole channels file."""

    channels: Mapping[str, ChannelSpec]
    routes: tuple[Route, ...]
    suppression_window_s: float = 0.0
    channel_limit: Limit | None = None
    recipient_limit: Limit | None = None
    escalations: tuple[Escalation, ...] = ()
    digest: Digest | None = None


def load_notify_config(settings: Settings, path: Path | None = None) -> NotifyConfig:
    """Read the channels file (default: settings.channels_file); raises ChannelsFileError naming file and field."""
    path = path or settings.channels_file
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ChannelsFileError(f"{path}: expected a readable channels file, found {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ChannelsFileError(f"{path}: expected YAML, found {error}") from None
    try:
        return _Parser(settings).config(document)
    except _FieldError as error:
        raise ChannelsFileError(f"{path}: {error}") from None


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class _Parser:
    """Turns the YAML document into a NotifyConfig, checking each field."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.placeholders = {"SMARTGRID_WEBHOOK_URL": settings.webhook_url, "SMARTGRID_MAIL_FROM": settings.mail_from}
        self.channel_names: tuple[str, ...] = ()

    def config(self, document: Any) -> NotifyConfig:
        top = self.mapping(document, "<file>", required=("channels", "routes"),
                           optional=("suppression", "rate_limits", "escalations", "digest"))
        channels = {name: self.channel(name, value) for name, value in
                    self.mapping(top["channels"], "channels").items()}
        if not channels:
            raise _FieldError("channels", "expected at least one channel, found none")
        self.channel_names = tuple(channels)
        routes = self.items(top["routes"], "routes", self.route)
        if not routes:
            raise _FieldError("routes", "expected at least one route, found none")
        limits = self.mapping(top.get("rate_limits") or {}, "rate_limits", optional=("channel", "recipient"))
        suppression = self.mapping(top.get("suppression") or {}, "suppression", optional=("window",))
        return NotifyConfig(
            channels=channels,
            routes=tuple(routes),
            suppression_window_s=self.duration(suppression.get("window", 0), "suppression.window"),
            channel_limit=self.optional(limits.get("channel"), "rate_limits.channel", self.limit),
            recipient_limit=self.optional(limits.get("recipient"), "rate_limits.recipient", self.limit),
            escalations=tuple(self.items(top.get("escalations") or [], "escalations", self.escalation)),
            digest=self.optional(top.get("digest"), "digest", self.digest),
        )

    def channel(self, name: str, value: Any) -> ChannelSpec:
        where = f"channels.{name}"
        entry = self.mapping(value, where, required=("kind",), optional=("url", "timeout"))
        kind = self.choice(entry["kind"], f"{where}.kind", CHANNEL_KINDS)
        timeout = self.duration(entry.get("timeout", 10), f"{where}.timeout")
        if kind == "webhook":
            if self.settings.webhook_secret is None:
                raise _FieldError(where, "expected SMARTGRID_WEBHOOK_SECRET to sign its requests, found it unset")
            return ChannelSpec(name, kind, self.url(entry.get("url"), f"{where}.url"), timeout)
        if "url" in entry:
            raise _FieldError(f"{where}.url", f"expected no url on a {kind} channel, found {_describe(entry['url'])}")
        if kind == "smtp" and self.settings.smtp_url is None:
            raise _FieldError(where, "expected SMARTGRID_SMTP_URL to send mail through, found it unset")
        return ChannelSpec(name, kind, None, timeout)

    def route(self, value: Any, where: str) -> Route:
        entry = self.mapping(value, where, required=("name", "channels", "recipients"),
                             optional=("severities", "events", "feeders", "regions"))
        return Route(
            name=self.text(entry["name"], f"{where}.name"),
            channels=self.channels(entry["channels"], f"{where}.channels"),
            recipients=self.texts(entry["recipients"], f"{where}.recipients"),
            severities=frozenset(self.choices(entry.get("severities", list(SEVERITIES)), f"{where}.severities",
                                              SEVERITIES)),
            events=frozenset(self.choices(entry.get("events", list(EVENT_KINDS)), f"{where}.events", EVENT_KINDS)),
            feeders=self.texts(entry.get("feeders", ["*"]), f"{where}.feeders"),
            regions=self.texts(entry.get("regions", ["*"]), f"{where}.regions"),
        )

    def escalation(self, value: Any, where: str) -> Escalation:
        entry = self.mapping(value, where, required=("name", "after", "channels", "recipients"),
                             optional=("severities",))
        return Escalation(
            name=self.text(entry["name"], f"{where}.name"),
            after_s=self.duration(entry["after"], f"{where}.after"),
            channels=self.channels(entry["channels"], f"{where}.channels"),
            recipients=self.texts(entry["recipients"], f"{where}.recipients"),
            severities=frozenset(self.choices(entry.get("severities", ["critical", "emergency"]),
                                              f"{where}.severities", SEVERITIES)),
        )

    def limit(self, value: Any, where: str) -> Limit:
        entry = self.mapping(value, where, required=("limit", "window"))
        return Limit(self.count(entry["limit"], f"{where}.limit"), self.window(entry["window"], f"{where}.window"))

    def digest(self, value: Any, where: str) -> Digest:
        entry = self.mapping(value, where, required=("threshold", "window"))
        return Digest(self.count(entry["threshold"], f"{where}.threshold"),
                      self.window(entry["window"], f"{where}.window"))

    # --- field checks ---------------------------------------------------------------

    def mapping(self, value: Any, where: str, *, required: tuple[str, ...] = (),
                optional: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _FieldError(where, f"expected a mapping, found {_describe(value)}")
        for key in required:
            if key not in value:
                raise _FieldError(f"{where}.{key}", "required field: expected a value, found nothing")
        if optional is not None:
            allowed = (*required, *optional)
            for key in value:
                if key not in allowed:
                    raise _FieldError(f"{where}.{key}", f"unknown field: expected one of {', '.join(allowed)}")
        return {str(key): item for key, item in value.items()}

    def items(self, value: Any, where: str, parse: Callable[[Any, str], T]) -> list[T]:
        if not isinstance(value, list):
            raise _FieldError(where, f"expected a list, found {_describe(value)}")
        return [parse(item, f"{where}[{index}]") for index, item in enumerate(value)]

    def optional(self, value: Any, where: str, parse: Callable[[Any, str], T]) -> T | None:
        return None if value is None else parse(value, where)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise _FieldError(where, f"expected a non-empty string, found {_describe(value)}")
        return _PLACEHOLDER.sub(lambda match: self.substitute(match.group(1), where), value)

    def substitute(self, name: str, where: str) -> str:
        if name not in self.placeholders:
            known = ", ".join(f"${{{known}}}" for known in self.placeholders)
            raise _FieldError(where, f"expected a placeholder among {known}, found ${{{name}}}")
        value = self.placeholders[name]
        if value is None:
            raise _FieldError(where, f"expected {name} to be set for ${{{name}}}, found it unset")
        return value

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        texts = tuple(self.items(value, where, self.text))
        if not texts:
            raise _FieldError(where, "expected at least one entry, found none")
        return texts

    def choice(self, value: Any, where: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise _FieldError(where, f"expected one of {', '.join(allowed)}, found {_describe(value)}")
        return value

    def choices(self, value: Any, where: str, allowed: tuple[str, ...]) -> list[str]:
        chosen = self.items(value, where, lambda item, at: self.choice(item, at, allowed))
        if not chosen:
            raise _FieldError(where, "expected at least one entry, found none")
        return chosen

    def channels(self, value: Any, where: str) -> tuple[str, ...]:
        names = tuple(self.items(value, where, lambda item, at: self.choice(item, at, self.channel_names)))
        if not names:
            raise _FieldError(where, "expected at least one channel, found none")
        return names

    def url(self, value: Any, where: str) -> str:
        url = self.text(value, where)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _FieldError(where, f"expected an http(s) URL with a host, found {url!r}")
        return url

    def duration(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _FieldError(where, f"expected seconds or an ISO-8601 duration, found {_describe(value)}")
        try:
            seconds = parse_duration(value) if isinstance(value, str) else float(value)
        except ValueError as error:
            raise _FieldError(where, str(error)) from None
        if seconds < 0:
            raise _FieldError(where, f"expected a duration >= 0, found {value!r}")
        return seconds

    def window(self, value: Any, where: str) -> float:
        seconds = self.duration(value, where)
        if seconds <= 0:
            raise _FieldError(where, f"expected a duration > 0, found {value!r}")
        return seconds

    def count(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _FieldError(where, f"expected a whole number >= 1, found {_describe(value)}")
        return value
