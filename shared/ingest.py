"""Device ingestion: every event is checked against the catalogue and against what its sending device
may send (shared/readings/senders.py); valid ones go to the broker with their partition key, invalid
ones are reported to the sender and never forwarded. One event the device may not send refuses the
whole request (SenderRefused): nothing of it is forwarded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.auth.registry import RegisteredDevice
from shared.cloudevents import (
    CloudEvent,
    InvalidEvent,
    from_http,
    from_http_batch,
    is_batch,
)
from shared.readings.senders import Senders
from shared.sink import EventSink
from shared.validation.catalogue import Catalogue, UnknownEventType
from shared.validation.rejections import rejection
from shared.validation.validators import InvalidData


@dataclass
class IngestReport:
    """What became of the events of one request."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        """202 when every event was forwarded, 400 when any was rejected."""
        return 400 if self.rejected else 202

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": len(self.accepted)}
        if self.rejected:
            body["error"] = "invalid events" if len(self.rejected) > 1 else self.rejected[0]["error"]
            body["rejected"] = self.rejected
        return body


class Ingestor:
    """Checks events against the catalogue and forwards the valid ones to the broker."""

    def __init__(self, catalogue: Catalogue, sink: EventSink, senders: Senders) -> None:
        self._catalogue = catalogue
        self._sink = sink
        self._senders = senders

    async def ingest_http(self, headers: Mapping[str, str], body: bytes, device: RegisteredDevice) -> IngestReport:
        """Ingest the event(s) one device sent in one HTTP request in binary, structured or batch mode."""
        if is_batch(headers):
            try:
                return await self.ingest(from_http_batch(body), device)
            except InvalidEvent as error:
                return IngestReport(rejected=[rejection(error)])
        try:
            event = from_http(headers, body)
        except InvalidEvent as error:
            return IngestReport(rejected=[rejection(error)])
        return await self.ingest([event], device)

    async def ingest(self, events: Sequence[CloudEvent | InvalidEvent], device: RegisteredDevice) -> IngestReport:
        """Forward the valid events (raises SinkUnavailable when the broker did not take them, SenderRefused
        when the device may not send one of them)."""
        for item in events:  # a type unknown to the catalogue is bad input (400), not a refusal
            if isinstance(item, CloudEvent) and item.type in self._catalogue.types:
                self._senders.check_type(device, item.type)
        report, admitted = IngestReport(), []
        for index, item in enumerate(events):
            try:
                if isinstance(item, InvalidEvent):
                    raise item
                event, datum = self.admit(item)
                await self._senders.check_event(device, event.type, datum)
                admitted.append(event)
            except (InvalidEvent, InvalidData, UnknownEventType) as error:
                described = rejection(error, *((item.id, item.type) if isinstance(item, CloudEvent) else ()))
                if len(events) > 1:
                    described["index"] = index
                report.rejected.append(described)
        await self._sink.send_all(admitted)
        report.accepted = [event.id for event in admitted]
        return report

    def admit(self, event: CloudEvent) -> tuple[CloudEvent, dict[str, Any]]:
        """The event as forwarded (data checked, `partitionkey` set from the schema's key field) and its data."""
        schema = self._catalogue.latest(event.type)
        datum = schema.validate(event.json())
        key = schema.partition_key
        return (event.with_attributes(partitionkey=str(datum[key])) if key else event), datum
