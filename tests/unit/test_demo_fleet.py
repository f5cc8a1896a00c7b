"""The demo's pure parts: load profiles, the simulated fleet, injected anomalies and malformed input."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.demo.anomalies import DEEP_SAG, KINDS, REVERSE_FLOW, SILENCE, plan_anomalies
from local.demo.expected_alerts import ExpectedAlerts
from local.demo.fleet import Fleet, IntervalReadings, build_fleet, simulate
from local.demo.malformed import (
    HTTP_KINDS,
    RECORD_KINDS,
    malformed_record,
    malformed_request,
    plan_malformed,
)
from local.demo.messages import sensor_requests
from local.demo.options import DemoOptions, Period
from local.demo.profiles import (
    PROFILES,
    LoadProfile,
    day_type,
    energy_kwh,
    load_profile,
    pv_output_share,
)
from local.demo.workload import Injections, interval_messages, plan_injections
from shared.alerting.conditions import Context
from shared.alerting.engine import CLEARED, RAISED, DeviceState, RuleEngine, Transition
from shared.alerting.observations import from_meter, from_sensor
from shared.alerting.rules import RuleSet
from shared.cloudevents import CloudEvent
from shared.config import Settings
from shared.auth.registry import RegisteredDevice
from shared.ingest import Ingestor
from shared.readings.decoding import ReadingDecoder
from shared.validation.catalogue import Catalogue
from shared.validation.validators import InvalidData
from shared.validation.wire import encode

EVENTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
BATCH = "com.smartgrid.meter.readings.batch"
DAY = Period(datetime(2025, 6, 18, tzinfo=UTC), timedelta(minutes=15), 96)  # a Wednesday in June
RULES = RuleSet.load(Settings().rules_file)


@pytest.fixture(scope="module")
def profiles() -> dict[str, LoadProfile]:
    return {name: load_profile(name) for name in PROFILES}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(EVENTS_DIR, max_future_seconds=300)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet(sensors=30, meters=120, gateways=4, seed=7)


@pytest.fixture(scope="module")
def day(fleet: Fleet, profiles: dict[str, LoadProfile]) -> list[IntervalReadings]:
    return list(simulate(fleet, DAY, profiles, seed=7))


def avro_of(catalogue: Catalogue):
    schema = catalogue.latest(BATCH)
    return lambda batch: encode(schema, schema.validate(batch))


@pytest.mark.parametrize("name", PROFILES)
def test_each_profile_shares_one_year_of_energy(profiles: dict[str, LoadProfile], name: str) -> None:
    days = (date(2025, 1, 1) + timedelta(days=n) for n in range(365))
    total = sum(sum(profiles[name].day_shares(day)) for day in days)
    assert total == pytest.approx(1.0, abs=0.03)  # BDEW: 1,000,000 kWh a year, holidays aside


def test_profiles_are_read_without_importing_demandlib() -> None:
    script = ("import sys; from local.demo.profiles import load_profile; load_profile('h25'); "
              "print(sorted({'demandlib', 'pandas', 'numpy'} & set(sys.modules)))")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_household_day_energy_and_evening_peak(profiles: dict[str, LoadProfile]) -> None:
    start = datetime(2025, 1, 15, tzinfo=UTC)
    assert energy_kwh(profiles["h25"], start, start + timedelta(days=1), 3650.0) == pytest.approx(10.0, rel=0.3)
    shares = profiles["h25"].day_shares(start.date())
    assert 16 * 4 <= shares.index(max(shares)) < 21 * 4  # the household peak is in the evening
    half = energy_kwh(profiles["h25"], start, start + timedelta(minutes=7, seconds=30), 1.0)
    assert half == pytest.approx(shares[0] / 2)


def test_day_types() -> None:
    assert [day_type(date(2025, 6, d)) for d in range(16, 23)] == ["WT"] * 5 + ["SA", "FT"]


def test_pv_delivers_by_day_only() -> None:
    assert pv_output_share(datetime(2025, 6, 18, 0, tzinfo=UTC), 51.0, 10.0) == 0.0
    assert pv_output_share(datetime(2025, 6, 18, 11, tzinfo=UTC), 51.0, 10.0) > 0.6
    assert pv_output_share(datetime(2025, 12, 18, 17, tzinfo=UTC), 51.0, 10.0) == 0.0


def test_fleet_shape(fleet: Fleet) -> None:
    assert len(fleet.sensors) == 30 and len(fleet.meters) == 120 and len(fleet.gateways) == 4
    assert len(fleet.feeders) == 20 and len({s.device_id for s in fleet.sensors}) == 30
    assert Counter(s.mode for s in fleet.sensors) == {"binary": 24, "structured": 3, "batch": 3}
    assert {g.encoding for g in fleet.gateways} == {"avro", "json"}
    assert sum(len(fleet.meters_of(g)) for g in range(4)) == 120
    assert any(m.pv_kwp for m in fleet.meters) and any(not m.pv_kwp for m in fleet.meters)


def test_seeded_determinism(fleet: Fleet, profiles: dict[str, LoadProfile], day: list[IntervalReadings]) -> None:
    again = list(simulate(build_fleet(30, 120, 4, seed=7), DAY, profiles, seed=7))
    other = list(simulate(build_fleet(30, 120, 4, seed=8), DAY, profiles, seed=8))
    assert again == day
    assert other[0].sensor_readings != day[0].sensor_readings
    assert plan_injections(fleet, DAY, 7) == plan_injections(fleet, DAY, 7) != plan_injections(fleet, DAY, 8)


def test_meter_counters_never_fall_and_export_only_by_day(day: list[IntervalReadings]) -> None:
    series: dict[str, list[dict[str, Any]]] = {}
    for interval in day:
        for batch in interval.meter_batches:
            for reading in batch["readings"]:
                series.setdefault(reading["meter_id"], []).append(reading["registers"])
    for registers in series.values():
        imports = [r["1.8.0"] for r in registers]
        assert imports == sorted(imports) and imports[-1] > imports[0]
        if "2.8.0" in registers[0]:
            exports = [r["2.8.0"] for r in registers]
            assert exports == sorted(exports)
            assert exports[4 * 3] == exports[0]  # nothing exported between 00:00 and 03:00 UTC
            assert all(r["2.7.0"] == 0.0 for r in registers[: 4 * 3])
    assert any(r[-1]["2.8.0"] > r[0]["2.8.0"] for r in series.values() if "2.8.0" in r[0])


def test_readings_are_valid_and_raise_no_alert_without_injections(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    for interval in day:
        for reading in interval.sensor_readings:
            catalogue.validate("com.smartgrid.sensor.reading", reading)
        for batch in interval.meter_batches:
            catalogue.validate(BATCH, batch)
    normal = ((i.moment, i.sensor_readings, [r for b in i.meter_batches for r in b["readings"]]) for i in day)
    assert run_rules(fleet, normal) == []


def test_sensor_voltage_sags_at_the_evening_peak(day: list[IntervalReadings]) -> None:
    def mean_voltage(hour: int) -> float:
        readings = day[hour * 4].sensor_readings
        return sum(r["voltage_v"]["l1"] for r in readings) / len(readings)

    assert mean_voltage(18) < mean_voltage(3) - 1.0
    assert all(49.9 < r["frequency_hz"] < 50.1 for interval in day for r in interval.sensor_readings)


def test_each_anomaly_raises_its_rule_once_and_clears_within_the_day(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    injections = plan_injections(fleet, DAY, seed=7)
    assert {anomaly.kind for anomaly in injections.planned} == set(KINDS)
    sent = list(sent_readings(fleet, day, injections, catalogue))
    for _, sensors, meters in sent:
        for reading in sensors:
            catalogue.validate("com.smartgrid.sensor.reading", reading)
        catalogue.validate(BATCH, {"gateway_id": "GW-001", "readings": meters})
    transitions = run_rules(fleet, sent)
    raised = [t for t in transitions if t.change == RAISED]
    assert sorted((t.rule_id, t.device_id) for t in raised) == sorted(
        (anomaly.rule, anomaly.device_id) for anomaly in injections.planned)
    assert Counter(t.alert_id for t in raised) == Counter(t.alert_id for t in transitions if t.change == CLEARED)
    deep_sag = next(anomaly.device_id for anomaly in injections.planned if anomaly.kind == DEEP_SAG)
    assert "critical" in {t.severity for t in transitions if t.device_id == deep_sag}


def test_expected_alerts_are_those_of_the_engine_except_missing_data(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    injections = plan_injections(fleet, DAY, seed=7)
    expected = ExpectedAlerts(RULES, pv_meters(fleet))
    for _, sensors, meters in sent_readings(fleet, day, injections, catalogue):
        expected.sensor_readings(sensors)
        expected.meter_readings(meters)
    planned = [anomaly for anomaly in injections.planned if anomaly.kind != SILENCE]
    assert sorted(expected.raised.values()) == sorted((anomaly.rule, anomaly.device_id) for anomaly in planned)
    assert expected.timed_rules == {"missing-data"}
    assert expected.by_rule() == Counter(anomaly.rule for anomaly in planned)
    one = next(iter(expected.raised))
    assert expected.by_rule(already={one}).total() == len(planned) - 1


def test_anomalies_that_do_not_fit_a_short_period_are_left_out(fleet: Fleet) -> None:
    planned = plan_anomalies(fleet, 8, 15, seed=7)
    assert {anomaly.kind for anomaly in planned} == set(KINDS) - {"flatline"}
    for anomaly in planned:
        kind = KINDS[anomaly.kind]
        assert anomaly.first >= kind.lead and anomaly.first + anomaly.length + kind.tail <= 8
    exporter = next(anomaly.device_id for anomaly in planned if anomaly.kind == REVERSE_FLOW)
    assert exporter not in pv_meters(fleet)


def pv_meters(fleet: Fleet) -> frozenset[str]:
    """The meters whose generation the demo registers."""
    return frozenset(meter.meter_id for meter in fleet.meters if meter.pv_kwp)


def sent_readings(
    fleet: Fleet, day: list[IntervalReadings], injections: Injections, catalogue: Catalogue
) -> Iterator[tuple[datetime, list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each interval's time, and the sensor and meter readings the demo sends in it."""
    avro = avro_of(catalogue)
    for interval in day:
        requests, records = interval_messages(fleet, interval, injections, avro)
        yield (interval.moment, [r for request in requests for r in request.readings],
               [r for record in records for r in record.readings])


def run_rules(
    fleet: Fleet, intervals: Iterable[tuple[datetime, list[dict[str, Any]], list[dict[str, Any]]]]
) -> list[Transition]:
    """The platform's rule engine over the readings, sweeping for missing data at the end of each interval."""
    engine, states, context = RuleEngine(RULES), {}, Context(generation=pv_meters(fleet))
    transitions: list[Transition] = []
    for moment, sensors, meters in intervals:
        observations = [from_sensor(timed(r)) for r in sensors] + [from_meter(timed(r)) for r in meters]
        for observation in observations:
            state = states.setdefault(observation.device_id, DeviceState(observation.device_id))
            transitions += engine.observe(state, observation, context)
        for state in states.values():
            transitions += engine.sweep(state, moment.timestamp())
    return transitions


def timed(reading: dict[str, Any]) -> dict[str, Any]:
    """A reading with its timestamp as a datetime, as the catalogue hands it to the rules."""
    return {**reading, "timestamp": datetime.fromisoformat(reading["timestamp"])}


def test_malformed_plan_is_about_one_percent_with_every_kind() -> None:
    plan = plan_malformed(HTTP_KINDS, 200, 96, seed=7, salt="http")
    items = [item for interval in plan.values() for item in interval]
    assert len(items) == 192 and {kind for kind, _ in items} == set(HTTP_KINDS)
    small = plan_malformed(RECORD_KINDS, 2, 8, seed=7, salt="kafka")
    assert sorted(kind for interval in small.values() for kind, _ in interval) == sorted(RECORD_KINDS)


class _Sink:
    """Stands in for the broker: takes every event."""

    async def send_all(self, events: object) -> None:
        list(events)  # type: ignore[call-overload]


class _AnySender:
    """Stands in for the device checks (tested against the running platform): lets every event through."""

    def check_type(self, device: object, type_: str) -> None:
        pass

    async def check_event(self, device: object, type_: str, datum: object) -> None:
        pass


SENSOR = RegisteredDevice("s-any", "sensor", None, False, frozenset())


async def test_ingest_accepts_the_readings_and_refuses_each_malformed_kind(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    ingestor = Ingestor(catalogue, _Sink(), _AnySender())  # type: ignore[arg-type]
    readings = day[0].sensor_readings
    for request in sensor_requests(fleet, readings):
        report = await ingestor.ingest_http(request.headers, request.body, SENSOR)
        assert (report.status, len(report.accepted)) == (202, len(request.readings))
    fields = {}
    for kind in HTTP_KINDS:
        request = malformed_request(kind, readings[0], f"bad-{kind}")
        report = await ingestor.ingest_http(request.headers, request.body, SENSOR)
        assert (report.status, report.accepted) == (400, [])
        fields[kind] = report.rejected[0]["field"]
    assert fields == {"invalid-json": "body", "unknown-type": "type", "missing-field": "data.feeder_id",
                      "wrong-type": "data.frequency_hz", "timestamp-in-future": "data.timestamp",
                      "timestamp-too-old": "data.timestamp"}


def test_process_reads_gateway_records_and_refuses_malformed_ones(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    processor = ReadingDecoder(catalogue, catalogue.by_id)
    injections = plan_injections(fleet, DAY, seed=7)
    avro = avro_of(catalogue)
    _, records = interval_messages(fleet, day[0], injections, avro)
    for record in records:
        expected = [catalogue.validate("com.smartgrid.meter.reading", reading) for reading in record.readings]
        assert processor.decode(kafka_event(record.record.value)).datums == expected
    for kind in RECORD_KINDS:
        bad = malformed_record(kind, "GW-001", day[0].meter_batches[0], avro)
        with pytest.raises((InvalidData, ValueError)):
            processor.decode(kafka_event(bad.record.value))


def kafka_event(value: bytes | None) -> CloudEvent:
    """A gateway record as the KafkaSource hands it to `process`."""
    return CloudEvent({
        "specversion": "1.0", "id": "partition:0/offset:0", "type": "dev.knative.kafka.event",
        "source": "/apis/v1/namespaces/smartgrid/kafkasources/gateways#smartgrid-meter-readings",
    }, value)


def test_options_period_is_yesterday_and_checks_its_flags() -> None:
    period = DemoOptions().period(datetime(2025, 6, 18, 13, 7, tzinfo=UTC))
    assert (period.start, period.end, period.count) == (
        datetime(2025, 6, 17, tzinfo=UTC), datetime(2025, 6, 18, tzinfo=UTC), 96)
    with pytest.raises(ValueError, match="--gateways"):
        DemoOptions(meters=2, gateways=3).check()
