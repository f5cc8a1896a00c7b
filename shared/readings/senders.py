"""Who may send which readings: the device behind a token, and the gateways' records on Kafka.

Over HTTP (`ingest`), a device sends readings only, about itself: a sensor `sensor.reading` with its
own `device_id`, a meter `meter.reading` with its own `meter_id`, a gateway `meter.readings.batch`
with its own `gateway_id` (and `meter.reading`) for meters registered behind it. Every other type
(alerts, forecasts, notifications, audit: the platform's own) is refused. On Kafka, a gateway's
record must name a registered gateway and meters behind it, a sensor record a registered sensor;
what does not is refused as bad data (dead-lettered with the reason). A meter missing from a gateway's
cached answer makes one more registry lookup (concurrent ones share it) before it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.auth.guard import AccessRefused
from shared.auth.principal import Principal
from shared.auth.registry import DeviceRegistry, RegisteredDevice
from shared.readings.decoding import METER_BATCH, METER_READING, SENSOR_READING
from shared.validation.validators import InvalidData

SENDABLE = {"sensor": (SENSOR_READING,), "meter": (METER_READING,), "gateway": (METER_BATCH, METER_READING)}
OWN_FIELD = {SENSOR_READING: "device_id", METER_READING: "meter_id", METER_BATCH: "gateway_id"}


class SenderRefused(AccessRefused):
    """A device sent what it may not: 401 for a revoked or unknown device, 403 naming the field at fault
    (`type`, `data.<field>`) otherwise."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(status, "invalid_token" if status == 401 else "insufficient_scope", message, field)


class Senders:
    """Checks senders against the device registry."""

    def __init__(self, registry: DeviceRegistry) -> None:
        self._registry = registry

    async def sender(self, principal: Principal) -> RegisteredDevice:
        """The registered, unrevoked device a token names; raises SenderRefused."""
        if principal.kind != "device":
            raise SenderRefused(403, "authorization", f"expected a device's token, found a {principal.kind}'s")
        device = await self._registry.device(principal.subject)
        if device is None or device.revoked:
            state = "revoked" if device else "not registered"
            raise SenderRefused(401, "authorization", f"expected a registered device, found {principal.subject!r} "
                                                      f"{state}")
        return device

    def check_type(self, device: RegisteredDevice, type_: str) -> None:
        """Raise SenderRefused 403 naming `type` unless a device of this kind may send this type."""
        allowed = SENDABLE.get(device.kind, ())
        if type_ not in allowed:
            raise SenderRefused(403, "type", f"expected a type a {device.kind} may send ({', '.join(allowed)}), "
                                             f"found {type_!r}")

    async def check_event(self, device: RegisteredDevice, type_: str, datum: dict[str, Any]) -> None:
        """Raise SenderRefused unless `device` may send this event (see the module's docstring)."""
        self.check_type(device, type_)
        if device.kind == "gateway" and type_ == METER_READING:
            meters = [datum]
        else:
            field = OWN_FIELD[type_]
            if datum.get(field) != device.device_id:
                raise SenderRefused(403, f"data.{field}", f"expected the token's device {device.device_id!r}, "
                                                          f"found {datum.get(field)!r}")
            meters = datum["readings"] if type_ == METER_BATCH else []
        stranger = await self._stranger(device, meters)
        if stranger is not None:
            index, meter = stranger
            field = "data.meter_id" if type_ == METER_READING else f"data.readings[{index}].meter_id"
            raise SenderRefused(403, field, f"expected a meter registered behind gateway {device.device_id!r}, "
                                            f"found {meter!r}")

    async def check_record(self, type_: str, datum: dict[str, Any]) -> None:
        """Raise InvalidData unless a gateway topic's record names registered devices (see the docstring)."""
        sender_field = OWN_FIELD[type_] if type_ != METER_READING else "meter_id"
        sender_id = datum[sender_field]
        expected_kind = {SENSOR_READING: "sensor", METER_READING: "meter", METER_BATCH: "gateway"}[type_]
        device = await self._registry.device(sender_id)
        if device is None or device.revoked or device.kind != expected_kind:
            raise InvalidData(sender_field, f"expected a registered {expected_kind}, found {sender_id!r}"
                                            f"{' (revoked)' if device and device.revoked else ''}")
        if type_ == METER_BATCH:
            stranger = await self._stranger(device, datum["readings"])
            if stranger is not None:
                raise InvalidData(f"readings[{stranger[0]}].meter_id", f"expected a meter registered behind gateway "
                                                                      f"{sender_id!r}, found {stranger[1]!r}")

    async def _stranger(self, gateway: RegisteredDevice, readings: Sequence[dict[str, Any]]) -> tuple[int, str] | None:
        """The first reading (index, meter) of a meter not behind `gateway`, asking the registry again once."""
        for attempt in range(2):
            for index, reading in enumerate(readings):
                if reading["meter_id"] not in gateway.meters:
                    break
            else:
                return None
            if attempt == 0:  # a meter registered since the gateway's answer was cached: ask again
                fresher = await self._registry.device(gateway.device_id, fresher_than_s=0.0)
                if fresher is None:
                    return index, reading["meter_id"]
                gateway = fresher
        return index, reading["meter_id"]
