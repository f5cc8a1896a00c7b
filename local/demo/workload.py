"""The demo's workload: the simulated period's readings, anomalies and malformed input, sent paced
over the wall-time budget with a progress bar."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from local.demo.anomalies import (
    Anomaly,
    apply_to_meter,
    apply_to_sensor,
    by_interval,
    plan_anomalies,
)
from local.demo.fleet import Fleet, IntervalReadings, simulate
from local.demo.malformed import (
    OTHER_DEVICE,
    RECORD_KINDS,
    Plan,
    http_kinds,
    malformed_record,
    malformed_request,
    plan_malformed,
)
from local.demo.messages import (
    AvroEncoder,
    GatewayRecord,
    HttpRequest,
    SensorRequests,
    gateway_record,
)
from local.demo.options import Period
from local.demo.profiles import LoadProfile
from local.demo.senders import HttpSender, KafkaSender
from local.demo.tally import Tally


@dataclass(frozen=True)
class Injections:
    """What a run injects: the anomalies (also by interval and device), bad requests (malformed or
    forbidden) and malformed records by interval; and the length of an interval in hours."""

    planned: tuple[Anomaly, ...]
    anomalies: Mapping[int, Mapping[str, Sequence[Anomaly]]]
    requests: Plan
    records: Plan
    interval_h: float


def plan_injections(fleet: Fleet, period: Period, seed: int) -> Injections:
    """The seeded anomalies and malformed input of a run."""
    minutes = round(period.interval.total_seconds() / 60)
    planned = plan_anomalies(fleet, period.count, minutes, seed)
    return Injections(
        planned,
        by_interval(planned, period.count),
        plan_malformed(http_kinds(len(fleet.sensors)), len(fleet.sensors), period.count, seed, "http"),
        plan_malformed(RECORD_KINDS, len(fleet.gateways), period.count, seed, "kafka"),
        minutes / 60,
    )


class IntervalMessages:
    """The HTTP requests and Kafka records of each interval in turn (call in order: batch-mode sensors
    hold readings back), anomalies and bad input included (made from genuine readings; a gateway whose
    meters are all silent sends nothing)."""

    def __init__(self, fleet: Fleet, injections: Injections, avro: AvroEncoder, intervals: int) -> None:
        self._fleet = fleet
        self._injections = injections
        self._avro = avro
        self._sensors = SensorRequests(fleet, intervals)

    def __call__(self, interval: IntervalReadings) -> tuple[list[HttpRequest], list[GatewayRecord]]:
        """The messages to send in `interval`."""
        fleet, injections = self._fleet, self._injections
        index, anomalies = interval.index, injections.anomalies.get(interval.index, {})
        sensors = [
            apply_to_sensor(reading, anomalies[reading["device_id"]]) if reading["device_id"] in anomalies
            else reading
            for reading in interval.sensor_readings
        ]
        batches = [
            {**batch, "readings": _sent([
                apply_to_meter(reading, anomalies[reading["meter_id"]], index, injections.interval_h)
                if reading["meter_id"] in anomalies else reading for reading in batch["readings"]
            ])}
            for batch in interval.meter_batches
        ]
        requests = self._sensors.of_interval(index, _sent(sensors))
        for number, (kind, sensor) in enumerate(injections.requests.get(index, ())):
            requests.append(self._bad_request(kind, sensor, interval, f"malformed-{index}-{number}"))
        records = [gateway_record(gateway, batch, self._avro)
                   for gateway, batch in zip(fleet.gateways, batches, strict=True) if batch["readings"]]
        for kind, gateway in injections.records.get(index, ()):
            genuine = interval.meter_batches[gateway]
            records.append(malformed_record(kind, fleet.gateways[gateway].gateway_id, genuine, self._avro))
        return requests, records

    def _bad_request(self, kind: str, sensor: int, interval: IntervalReadings, event_id: str) -> HttpRequest:
        """Sensor `sensor`'s bad request of `kind`: made from its genuine reading, or for OTHER_DEVICE,
        the next sensor's reading sent with its token."""
        if kind != OTHER_DEVICE:
            return malformed_request(kind, interval.sensor_readings[sensor], event_id)
        other = interval.sensor_readings[(sensor + 1) % len(self._fleet.sensors)]
        return malformed_request(kind, other, event_id, sender=self._fleet.sensors[sensor].device_id)


async def send_period(
    fleet: Fleet, period: Period, profiles: Mapping[str, LoadProfile], seed: int, injections: Injections,
    duration_s: float, http: HttpSender, kafka: KafkaSender, avro: AvroEncoder, tally: Tally,
) -> None:
    """Send every interval's messages, interval k not before k x duration/intervals seconds from now."""
    loop = asyncio.get_running_loop()
    began, pace = loop.time(), duration_s / period.count
    messages = IntervalMessages(fleet, injections, avro, period.count)
    with tqdm(total=period.count, desc="simulated intervals", unit="interval", file=sys.stderr) as bar:
        for interval in simulate(fleet, period, profiles, seed):
            await asyncio.sleep(max(0.0, began + interval.index * pace - loop.time()))
            requests, records = messages(interval)
            await asyncio.gather(http.send_all(requests), kafka.send_all(records))
            readings = tally.sensor_readings_accepted + tally.meter_readings_produced
            bar.set_postfix_str(f"{interval.moment:%H:%M} UTC, {readings:,} readings sent", refresh=False)
            bar.update()


def _sent(readings: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The readings that are sent: those of devices that are not silent."""
    return [reading for reading in readings if reading is not None]
