"""Identity for a function, built once from the settings: its guard, its own token, the device registry."""

from __future__ import annotations

from typing import Any

from shared.audit.events import AuditReporter
from shared.auth.client import ServiceToken
from shared.auth.guard import Guard, verifier_from_settings
from shared.auth.policy import RULES, Rule
from shared.auth.registry import DeviceRegistry, RegistryUnavailable
from shared.config import ConfigError, Settings
from shared.readings.decoding import RecordCheck
from shared.readings.senders import Senders
from shared.resilience import Downstreams
from shared.sink import EventSink


def audit_reporter(settings: Settings, source: str) -> AuditReporter:
    """Reports audit entries to the broker (K_SINK)."""
    return AuditReporter(EventSink(settings.require_sink(), Downstreams.from_settings(settings)), source)


def function_guard(settings: Settings, source: str, rules: tuple[Rule, ...] = RULES,
                   reporter: AuditReporter | None = None) -> Guard:
    """The guard of a function's API: tokens of SMARTGRID_AUTH_ISSUER, refusals reported as audit events."""
    reporter = reporter or audit_reporter(settings, source)
    return Guard(verifier_from_settings(settings), rules, source=source, on_refused=reporter.fire)


def own_token(settings: Settings) -> ServiceToken:
    """The function's own access token (SMARTGRID_CLIENT_ID / SMARTGRID_CLIENT_SECRET)."""
    if settings.client_id is None or settings.client_secret is None:
        raise ConfigError("SMARTGRID_CLIENT_ID, SMARTGRID_CLIENT_SECRET: expected this service's OAuth client, "
                          "found none")
    return ServiceToken(f"{settings.users_service_url()}/api/v1/auth/token", settings.client_id,
                        settings.client_secret)


def device_registry(settings: Settings, downstreams: Downstreams) -> DeviceRegistry:
    """The cached device registry of the users service, asked with the function's own token."""
    users = downstreams.get("users", lambda error: isinstance(error, RegistryUnavailable))
    return DeviceRegistry(f"{settings.users_service_url()}/api/v1/devices", own_token(settings), users,
                          ttl_s=settings.registry_cache_s)


def gateway_check(settings: Settings, downstreams: Downstreams) -> RecordCheck:
    """The registry check of gateway records read from Kafka (shared/readings/senders.py), built at the first
    record: a function that never reads one (a test, detect behind a Trigger only) needs no client of its own."""
    senders: list[Senders] = []

    async def check(type_: str, datum: dict[str, Any]) -> None:
        if not senders:
            senders.append(Senders(device_registry(settings, downstreams)))
        await senders[0].check_record(type_, datum)

    return check
