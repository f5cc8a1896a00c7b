"""The fleet in the device registry: every gateway, every meter behind its gateway and every sensor
registered with the users service (`POST /api/v1/devices`, at most MAX_BATCH a call) by the platform's
own admin client, before anything is sent; and a client secret for each sensor, to take its tokens.

Devices an earlier run registered (the same fleet on the same database) are left as they are, but a
sensor's secret is shown once only: such a sensor is given a new one (`POST /api/v1/devices/{id}/secret`).
A fleet device registered otherwise (as another kind, a meter behind another gateway, or revoked)
stops the run before anything is sent: its readings could only be refused.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from local.demo.fleet import Fleet
from local.users_client import UsersApiError, UsersClient
from shared.auth.client import (
    ServiceToken,
    TokenRefused,
    TokenUnavailable,
    token_endpoint,
)
from shared.users.devices import MAX_BATCH

RENEW_CONCURRENCY = 16
COLD_START_S = 60.0  # the users service scales to zero: a token request may wait for its start (up to 30 s)
FIRST_CALL_ATTEMPTS = 3
RETRY_DELAY_S = 2.0  # doubled each attempt
TIMEOUT_S = 300.0  # a call registering MAX_BATCH devices
SHOWN_CONFLICTS = 5
T = TypeVar("T")


class RegistrationError(RuntimeError):
    """Raised when the fleet could not be registered, or its sensors given secrets or tokens."""


@dataclass(frozen=True)
class Registration:
    """What registering the fleet did: devices registered by this run and by an earlier one (by kind),
    the registration calls it took, the sensors given a new secret, and every sensor's secret."""

    registered: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    already: Counter[str] = field(default_factory=Counter)
    renewed: int = 0
    secrets: Mapping[str, str] = field(default_factory=dict)


def fleet_devices(fleet: Fleet) -> list[dict[str, Any]]:
    """The registrations of the fleet: gateways first, so that each meter's gateway is registered before it."""
    gateways = [{"device_id": gateway.gateway_id, "kind": "gateway"} for gateway in fleet.gateways]
    meters = [{"device_id": meter.meter_id, "kind": "meter", "gateway_id": fleet.gateways[meter.gateway].gateway_id}
              for meter in fleet.meters]
    sensors = [{"device_id": sensor.device_id, "kind": "sensor"} for sensor in fleet.sensors]
    return gateways + meters + sensors


async def register(issuer: str, client: Mapping[str, str], fleet: Fleet) -> Registration:
    """Register the fleet at `issuer`'s users service as the admin `client` (`client_id`, `client_secret`)."""
    token = ServiceToken(token_endpoint(issuer), client["client_id"], client["client_secret"], timeout_s=COLD_START_S)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
            return await register_fleet(UsersClient(issuer, token, session), fleet)
    except (TokenRefused, TokenUnavailable) as error:
        raise RegistrationError(f"the platform's admin client could not take a token: {error}") from None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise RegistrationError(f"the users service at {issuer} did not answer: "
                                f"{str(error) or type(error).__name__}") from None


async def register_fleet(users: UsersClient, fleet: Fleet) -> Registration:
    """Register the fleet's devices not registered yet, in calls of at most MAX_BATCH; give the sensors an
    earlier run registered a new secret. Raises RegistrationError when a device is registered otherwise."""
    wanted = fleet_devices(fleet)
    known = {device["device_id"]: device for device in await _listed(users)}
    problems = conflicts(wanted, known)
    if problems:
        shown = "; ".join(problems[:SHOWN_CONFLICTS]) + ("; ..." if len(problems) > SHOWN_CONFLICTS else "")
        raise RegistrationError(
            f"{len(problems):,} device(s) of this fleet are registered otherwise in the users service ({shown}): "
            f"a demo can only use devices as it registers them: run it on other databases (SMARTGRID_DB_PREFIX)")
    missing = [spec for spec in wanted if spec["device_id"] not in known]
    secrets: dict[str, str] = {}
    calls = 0
    for batch in _batches(missing, MAX_BATCH):
        answers = await _call(users.register(batch), f"registering {len(batch):,} devices")
        calls += 1
        secrets.update((answer["device_id"], answer["client_secret"]) for answer in answers
                       if answer["kind"] == "sensor")
    earlier = [spec["device_id"] for spec in wanted if spec["kind"] == "sensor" and spec["device_id"] in known]
    secrets.update(await _renewed(users, earlier))
    return Registration(
        registered=Counter(spec["kind"] for spec in missing), calls=calls,
        already=Counter(spec["kind"] for spec in wanted if spec["device_id"] in known),
        renewed=len(earlier), secrets=secrets,
    )


def conflicts(wanted: Sequence[Mapping[str, Any]], known: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What keeps registered devices from serving as the fleet's: revoked, another kind, another gateway."""
    problems = []
    for spec in wanted:
        device_id, found = spec["device_id"], known.get(spec["device_id"])
        if found is None:
            continue
        if found.get("revoked"):
            problems.append(f"{device_id} is revoked")
        elif found.get("kind") != spec["kind"]:
            problems.append(f"expected {device_id} a {spec['kind']}, found a {found.get('kind')}")
        elif found.get("gateway_id") != spec.get("gateway_id"):
            where = f"behind {found['gateway_id']}" if found.get("gateway_id") else "without a gateway"
            problems.append(f"expected meter {device_id} behind {spec['gateway_id']}, found it {where}")
    return problems


async def _listed(users: UsersClient) -> list[dict[str, Any]]:
    """Every registered device. The first call to the users service: failures of a service still
    starting (no answer, 5xx) are retried; its refusal raises RegistrationError."""
    attempt = 1
    while True:
        try:
            return await users.devices()
        except (TokenUnavailable, aiohttp.ClientError, TimeoutError, UsersApiError) as error:
            refused = isinstance(error, UsersApiError) and error.status < 500
            if refused or attempt == FIRST_CALL_ATTEMPTS:
                if isinstance(error, UsersApiError):
                    raise RegistrationError(f"the users service refused listing the devices: {error}") from None
                raise
        await asyncio.sleep(RETRY_DELAY_S * 2 ** (attempt - 1))
        attempt += 1


async def _renewed(users: UsersClient, sensors: Sequence[str]) -> dict[str, str]:
    """A new secret for each of `sensors` (registered by an earlier run: their secrets were shown to it)."""
    slots = asyncio.Semaphore(RENEW_CONCURRENCY)

    async def renew(sensor: str) -> tuple[str, str]:
        async with slots:
            return sensor, await _call(users.new_secret(sensor), f"giving sensor {sensor} a new secret "
                                       f"(POST /api/v1/devices/{sensor}/secret; an earlier run registered it, "
                                       f"and its secret was shown to that run only)")

    return dict(await asyncio.gather(*(renew(sensor) for sensor in sensors)))


async def _call(call: Awaitable[T], what: str) -> T:
    """Await a users service call; its refusal as a RegistrationError saying what was being done."""
    try:
        return await call
    except UsersApiError as error:
        raise RegistrationError(f"the users service refused {what}: {error}") from None


def _batches(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
