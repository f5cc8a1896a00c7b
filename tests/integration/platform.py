"""The running platform as the integration tests reach it: devices posting to ingest with their own tokens,
and polling until a condition holds. The session's platform itself is the fixture `platform`
(tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp

from local.users_client import UsersClient
from tests.identity import Identity

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))


class Devices:
    """Sends requests to ingest with the token of the device they come from, registered on first use: a
    sensor by `device_id`, a meter by `meter_id` (a meter with its own client), a gateway's batch by
    `gateway_id` with its meters behind it. A batch-mode request is sent as its first event's device."""

    _registered: set[str] = set()  # per session: the platform and its registry are per session

    def __init__(self, ingest_url: str, http: aiohttp.ClientSession, identity: Identity) -> None:
        self.url = ingest_url
        self._http = http
        self.identity = identity
        self._users = UsersClient(identity.issuer, identity.token(("admin",), subject="tests", kind="service"), http)

    async def post(self, body: bytes, headers: dict[str, str], *,
                   sender: dict[str, str] | None = None) -> tuple[int, dict]:
        """POST one request to ingest as its sender (or as `sender`: an `Authorization` header); the status and
        JSON answer."""
        auth = sender or await self.headers_for(*_sender(body, headers))
        async with self._http.post(self.url, data=body, headers={**headers, **auth}) as response:
            return response.status, await response.json()

    async def headers_for(self, type_: str | None, data: object) -> dict[str, str]:
        """The `Authorization` header of the device that sends an event of `type_` with `data`."""
        if not isinstance(data, dict):
            data = {}
        if type_ == "com.smartgrid.meter.readings.batch" and isinstance(data.get("gateway_id"), str):
            readings = data.get("readings") if isinstance(data.get("readings"), list) else []
            meters = [r["meter_id"] for r in readings if isinstance(r, dict) and isinstance(r.get("meter_id"), str)]
            await self.register({"device_id": data["gateway_id"], "kind": "gateway"},
                                *({"device_id": m, "kind": "meter", "gateway_id": data["gateway_id"]} for m in meters))
            return self.identity.device(data["gateway_id"], "gateway")
        if type_ == "com.smartgrid.meter.reading" and isinstance(data.get("meter_id"), str):
            await self.register({"device_id": data["meter_id"], "kind": "meter"})
            return self.identity.device(data["meter_id"], "meter")
        device = data.get("device_id") if isinstance(data.get("device_id"), str) and data["device_id"] else "anyone"
        await self.register({"device_id": device, "kind": "sensor"})
        return self.identity.device(device, "sensor")

    async def register(self, *specs: dict[str, str]) -> None:
        """Register the devices not registered yet (in order: a gateway before its meters)."""
        unique = {spec["device_id"]: spec for spec in specs}
        new = [spec for device, spec in unique.items() if device not in self._registered]
        if new:
            await self._users.register(new)
            self._registered.update(spec["device_id"] for spec in new)


def _sender(body: bytes, headers: dict[str, str]) -> tuple[str | None, object]:
    """The type and data of a request's (first) event, as far as they can be read."""
    try:
        document = json.loads(body)
    except ValueError:
        return None, None
    content_type = headers.get("content-type", "")
    if content_type.startswith("application/cloudevents-batch"):
        document = document[0] if isinstance(document, list) and document else {}
    if content_type.startswith("application/cloudevents"):
        return (document.get("type"), document.get("data")) if isinstance(document, dict) else (None, None)
    return headers.get("ce-type"), document


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll `predicate()` until it returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(interval)
