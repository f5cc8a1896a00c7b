"""The channels file: the repository's own, and load errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings
from shared.notify.config import ChannelsFileError, Digest, Limit, load_notify_config

REPO_FILE = Path(__file__).resolve().parents[3] / "knative" / "config" / "notification-channels.yaml"
SETTINGS = Settings(webhook_url="http://hooks.example:8080/in", webhook_secret="s", smtp_url="smtp://mail.example:25")
MINIMAL: dict[str, Any] = {
    "channels": {"ops": {"kind": "webhook", "url": "${SMARTGRID_WEBHOOK_URL}"}, "mail": {"kind": "smtp"},
                 "journal": {"kind": "log"}},
    "routes": [{"name": "all", "channels": ["ops", "mail"], "recipients": ["ops@grid.example"]}],
}


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_repository_file_loads() -> None:
    config = load_notify_config(SETTINGS, REPO_FILE)
    assert config.channels["operators-webhook"].url == SETTINGS.webhook_url
    assert config.channels["operators-webhook"].timeout_s == 5.0
    assert {route.name for route in config.routes} >= {"control-room", "on-call"}
    assert config.suppression_window_s == 300.0
    assert config.channel_limit == Limit(600, 60.0) and config.recipient_limit == Limit(120, 60.0)
    assert config.escalations[0].after_s == 900.0
    assert config.digest == Digest(20, 300.0)


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    config = load_notify_config(SETTINGS, write(tmp_path, MINIMAL))
    (route,) = config.routes
    assert route.severities == {"info", "warning", "critical", "emergency"}
    assert route.events == {"raised", "updated", "acknowledged", "cleared"}
    assert route.feeders == ("*",) and route.regions == ("*",)
    assert config.suppression_window_s == 0 and config.digest is None and config.escalations == ()
    assert config.channel_limit is None and config.recipient_limit is None


def test_settings_path_is_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    settings = Settings(webhook_url="http://h:1/", webhook_secret="s", smtp_url="smtp://m:25", channels_file=path)
    assert load_notify_config(settings).channels["ops"].url == "http://h:1/"


def changed(**top: Any) -> dict[str, Any]:
    return {**MINIMAL, **top}


def with_route(**fields: Any) -> dict[str, Any]:
    return changed(routes=[{**MINIMAL["routes"][0], **fields}])


INVALID = [
    (changed(routes=[]), SETTINGS, "routes: expected at least one route, found none"),
    (with_route(channels=["ops", "pager"]), SETTINGS, "routes[0].channels[1]: expected one of ops, mail, journal, "
                                                       "found str 'pager'"),
    (with_route(severities=["fatal"]), SETTINGS, "routes[0].severities[0]: expected one of info, warning, critical"),
    (with_route(recipients="ops@grid.example"), SETTINGS, "routes[0].recipients: expected a list, found str"),
    (with_route(recipients=[]), SETTINGS, "routes[0].recipients: expected at least one entry, found none"),
    (with_route(feeder=["F-1"]), SETTINGS, "routes[0].feeder: unknown field: expected one of name, channels"),
    (changed(channels={"ops": {"kind": "pager"}}), SETTINGS, "channels.ops.kind: expected one of webhook, smtp, log"),
    (changed(channels={"ops": {"kind": "webhook", "url": "ftp://x"}}), SETTINGS,
     "channels.ops.url: expected an http(s) URL with a host, found 'ftp://x'"),
    (changed(channels={"ops": {"kind": "log", "url": "http://x"}}), SETTINGS,
     "channels.ops.url: expected no url on a log channel"),
    (MINIMAL, Settings(webhook_secret="s", smtp_url="smtp://m:25"),
     "channels.ops.url: expected SMARTGRID_WEBHOOK_URL to be set for ${SMARTGRID_WEBHOOK_URL}, found it unset"),
    (changed(channels={"ops": {"kind": "webhook", "url": "${HOME}/x"}}), SETTINGS,
     "channels.ops.url: expected a placeholder among ${SMARTGRID_WEBHOOK_URL}, ${SMARTGRID_MAIL_FROM}, found ${HOME}"),
    (MINIMAL, Settings(webhook_url="http://h:1/", smtp_url="smtp://m:25"),
     "channels.ops: expected SMARTGRID_WEBHOOK_SECRET to sign its requests, found it unset"),
    (MINIMAL, Settings(webhook_url="http://h:1/", webhook_secret="s"),
     "channels.mail: expected SMARTGRID_SMTP_URL to send mail through, found it unset"),
    (changed(suppression={"window": "5 minutes"}), SETTINGS,
     "suppression.window: expected an ISO-8601 duration such as PT0.5S, found '5 minutes'"),
    (changed(suppression={"window": -1}), SETTINGS, "suppression.window: expected a duration >= 0, found -1"),
    (changed(rate_limits={"channel": {"limit": 0, "window": 60}}), SETTINGS,
     "rate_limits.channel.limit: expected a whole number >= 1, found int 0"),
    (changed(rate_limits={"recipient": {"limit": 5}}), SETTINGS,
     "rate_limits.recipient.window: required field: expected a value, found nothing"),
    (changed(digest={"threshold": 5, "window": 0}), SETTINGS, "digest.window: expected a duration > 0, found 0"),
    (changed(escalations=[{"name": "boss", "after": "PT1M", "channels": ["sms"], "recipients": ["b"]}]), SETTINGS,
     "escalations[0].channels[0]: expected one of ops, mail, journal, found str 'sms'"),
    (changed(escalation=[]), SETTINGS, "<file>.escalation: unknown field: expected one of channels, routes"),
    ([1, 2], SETTINGS, "<file>: expected a mapping, found a list"),
]


@pytest.mark.parametrize(("document", "settings", "message"), INVALID, ids=[m.split(":")[0] for _, _, m in INVALID])
def test_errors_name_the_file_and_the_field(tmp_path: Path, document: Any, settings: Settings, message: str) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ChannelsFileError) as caught:
        load_notify_config(settings, path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ChannelsFileError, match="nothing.yaml: expected a readable channels file, found No such file"):
        load_notify_config(SETTINGS, tmp_path / "nothing.yaml")


def test_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels: [unclosed\n")
    with pytest.raises(ChannelsFileError, match="channels.yaml: expected YAML, found"):
        load_notify_config(SETTINGS, path)
