"""The demo's pure parts: load profiles, the simulated fleet, injected anomalies and bad input, the
requests of each sensor, and registering the fleet (against a stand-in users service)."""

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
    OTHER_DEVICE,
    RECORD_KINDS,
    REFUSAL_STATUS,
    http_kinds,
    malformed_record,
    malformed_request,
    plan_malformed,
)
from local.demo.messages import BATCH_INTERVALS, SensorRequests
from local.demo.options import DemoOptions, Period
from local.demo.profiles import (
    PROFILES,
    LoadProfile,
    day_type,
    energy_kwh,
    load_profile,
    pv_output_share,
)
from local.demo.registration import RegistrationError, fleet_devices, register_fleet
from local.demo.tally import Tally
from local.demo.workload import Injections, IntervalMessages, plan_injections
from local.users_client import UsersApiError
from shared.alerting.conditions import Context
from shared.alerting.engine import CLEARED, RAISED, DeviceState, RuleEngine, Transition
from shared.alerting.observations import from_meter, from_sensor
from shared.alerting.rules import RuleSet
from shared.auth.client import TokenUnavailable
from shared.auth.registry import RegisteredDevice
from shared.cloudevents import CloudEvent
from shared.config import Settings
from shared.ingest import Ingestor
from shared.readings.decoding import ReadingDecoder
from shared.readings.senders import SenderRefused, Senders
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
    messages = IntervalMessages(fleet, injections, avro_of(catalogue), len(day))
    for interval in day:
        requests, records = messages(interval)
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
    assert OTHER_DEVICE not in http_kinds(1) and OTHER_DEVICE in http_kinds(2)


def test_each_request_is_one_sensors_and_batch_mode_sensors_send_consecutive_readings(
    fleet: Fleet, day: list[IntervalReadings]
) -> None:
    sensors = SensorRequests(fleet, 5)
    sent = [sensors.of_interval(interval.index, interval.sensor_readings) for interval in day[:5]]
    batch_mode = {sensor.device_id for sensor in fleet.sensors if sensor.mode == "batch"}
    for requests in sent:
        assert all({r["device_id"] for r in request.readings} == {request.sender} for request in requests)
        assert all(len(request.readings) == 1 for request in requests if request.sender not in batch_mode)
        assert all([r["timestamp"] for r in q.readings] == sorted(r["timestamp"] for r in q.readings)
                   for q in requests)
    batches = [[len(request.readings) for request in requests if request.sender in batch_mode] for requests in sent]
    assert BATCH_INTERVALS == 2 and batches == [[], [2] * 3, [], [2] * 3, [1] * 3]  # the 5th at the period's end
    readings = sorted((r["device_id"], r["timestamp"]) for requests in sent for q in requests for r in q.readings)
    assert readings == sorted((r["device_id"], r["timestamp"]) for i in day[:5] for r in i.sensor_readings)


class _Sink:
    """Stands in for the broker: takes every event."""

    async def send_all(self, events: object) -> None:
        list(events)  # type: ignore[call-overload]


class _Registry:
    """Stands in for the device registry: every sensor of the fleet is registered."""

    def __init__(self, fleet: Fleet) -> None:
        self._sensors = {sensor.device_id for sensor in fleet.sensors}

    async def device(self, device_id: str, **_: object) -> RegisteredDevice | None:
        return RegisteredDevice(device_id, "sensor", None, False, frozenset()) if device_id in self._sensors else None


class _Principal:
    """A device's token as the guard hands it on."""

    kind = "device"

    def __init__(self, subject: str) -> None:
        self.subject = subject


async def test_ingest_accepts_each_sensors_requests_and_refuses_each_bad_kind_with_its_status(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    senders = Senders(_Registry(fleet))  # type: ignore[arg-type]
    ingestor = Ingestor(catalogue, _Sink(), senders)  # type: ignore[arg-type]

    async def answer(request: Any) -> tuple[int, list[str], str]:
        """Status, accepted event ids and the field at fault, as `ingest` answers the request."""
        device = await senders.sender(_Principal(request.sender))  # type: ignore[arg-type]
        try:
            report = await ingestor.ingest_http(request.headers, request.body, device)
        except SenderRefused as refused:
            return refused.status, [], refused.field
        return report.status, report.accepted, report.rejected[0]["field"] if report.rejected else ""

    sensors = SensorRequests(fleet, 2)
    for interval in day[:2]:
        for request in sensors.of_interval(interval.index, interval.sensor_readings):
            status, accepted, _ = await answer(request)
            assert (status, len(accepted)) == (202, len(request.readings))
    readings = day[0].sensor_readings
    statuses, fields = {}, {}
    for kind in HTTP_KINDS:
        sender = readings[0]["device_id"] if kind == OTHER_DEVICE else None
        request = malformed_request(kind, readings[1 if sender else 0], f"bad-{kind}", sender=sender)
        statuses[kind], accepted, fields[kind] = await answer(request)
        assert accepted == []
    assert statuses == REFUSAL_STATUS
    assert fields == {"invalid-json": "body", "unknown-type": "type", "missing-field": "data.feeder_id",
                      "wrong-type": "data.frequency_hz", "timestamp-in-future": "data.timestamp",
                      "timestamp-too-old": "data.timestamp", OTHER_DEVICE: "data.device_id"}
    with pytest.raises(ValueError, match="another sensor"):
        malformed_request(OTHER_DEVICE, readings[0], "bad")


class _Users:
    """Stands in for the users service's device API: lists, registers, gives new secrets; counts the calls."""

    def __init__(self, renews: bool = True, starting: int = 0) -> None:
        self.devices_by_id: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self._renews = renews
        self._starting = starting  # calls that fail as those of a service still starting

    async def devices(self, kind: str | None = None) -> list[dict[str, Any]]:
        self.calls["list"] += 1
        if self._starting:
            self._starting -= 1
            raise TokenUnavailable("token endpoint answered 503")
        return [device for device in self.devices_by_id.values() if kind in (None, device["kind"])]

    async def register(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls["register"] += 1
        if any(spec["device_id"] in self.devices_by_id for spec in devices):
            raise UsersApiError(409, {"error": "conflict", "message": "expected a new device id"})
        answers = []
        for spec in devices:
            gateway = spec.get("gateway_id")
            assert gateway is None or self.devices_by_id[gateway]["kind"] == "gateway", "gateway registered first"
            self.devices_by_id[spec["device_id"]] = {**spec, "gateway_id": gateway, "revoked": False}
            secret = {} if gateway else {"client_id": spec["device_id"], "client_secret": f"secret-{spec['device_id']}"}
            answers.append({**spec, "gateway_id": gateway, **secret})
        return answers

    async def new_secret(self, device_id: str) -> str:
        self.calls["new_secret"] += 1
        if not self._renews:
            raise UsersApiError(404, {"error": "not found", "message": f"no route POST /api/v1/devices/{device_id}"})
        return f"renewed-{device_id}"


async def test_registering_the_fleet_registers_what_is_missing_in_batches_and_renews_known_sensors(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("local.demo.registration.MAX_BATCH", 50)
    monkeypatch.setattr("local.demo.registration.RETRY_DELAY_S", 0.0)
    users = _Users(starting=2)  # scaled to zero: answers the third call
    first = await register_fleet(users, fleet)  # type: ignore[arg-type]
    assert first.registered == {"sensor": 30, "gateway": 4, "meter": 120} and first.calls == 4  # 154 devices
    assert not first.already and first.renewed == 0
    assert first.secrets == {sensor.device_id: f"secret-{sensor.device_id}" for sensor in fleet.sensors}
    meters = {d["device_id"]: d["gateway_id"] for d in users.devices_by_id.values() if d["kind"] == "meter"}
    assert meters == {m.meter_id: fleet.gateways[m.gateway].gateway_id for m in fleet.meters}

    again = await register_fleet(users, fleet)  # type: ignore[arg-type]
    assert not again.registered and again.calls == 0 and again.already == first.registered
    assert again.renewed == 30 and again.secrets == {s.device_id: f"renewed-{s.device_id}" for s in fleet.sensors}
    assert users.calls == {"list": 4, "register": 4, "new_secret": 30}

    larger = build_fleet(sensors=32, meters=120, gateways=4, seed=7)  # two sensors more: only they are new
    grown = await register_fleet(users, larger)  # type: ignore[arg-type]
    assert grown.registered == {"sensor": 2} and grown.renewed == 30 and len(grown.secrets) == 32


async def test_registering_stops_on_devices_registered_otherwise_or_secrets_that_cannot_be_renewed(
    fleet: Fleet
) -> None:
    users = _Users()
    await register_fleet(users, fleet)  # type: ignore[arg-type]
    three_gateways = build_fleet(sensors=30, meters=120, gateways=3, seed=7)
    other = await register_fleet(users, three_gateways)  # type: ignore[arg-type]
    # a meter's id names its gateway: meters behind another gateway than in the first fleet are other meters
    assert other.registered == {"meter": sum(index % 3 != index % 4 for index in range(120))}
    assert other.already == {"sensor": 30, "gateway": 3, "meter": 30}
    meter = fleet.meters[3].meter_id
    assert meter == "MTR-004-000004"
    users.devices_by_id[meter]["gateway_id"] = "GW-001"
    users.devices_by_id["GW-002"]["revoked"] = True
    users.devices_by_id[fleet.sensors[0].device_id]["kind"] = "gateway"
    calls = users.calls["register"]
    with pytest.raises(RegistrationError, match=(
            f"3 device.*GW-002 is revoked; expected meter {meter} behind GW-004, found it behind GW-001; "
            f"expected {fleet.sensors[0].device_id} a sensor, found a gateway")):
        await register_fleet(users, fleet)  # type: ignore[arg-type]
    assert users.calls["register"] == calls and len(fleet_devices(fleet)) == 154  # nothing registered when refused

    unrenewable = _Users(renews=False)
    await register_fleet(unrenewable, fleet)  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match=r"POST /api/v1/devices/SEN-F-\d\d-\d{3}/secret.*404"):
        await register_fleet(unrenewable, fleet)  # type: ignore[arg-type]


def test_process_reads_gateway_records_and_refuses_malformed_ones(
    fleet: Fleet, day: list[IntervalReadings], catalogue: Catalogue
) -> None:
    processor = ReadingDecoder(catalogue, catalogue.by_id)
    injections = plan_injections(fleet, DAY, seed=7)
    avro = avro_of(catalogue)
    _, records = IntervalMessages(fleet, injections, avro, len(day))(day[0])
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


def test_tally_counts_the_readings_an_earlier_run_stored(fleet: Fleet, day: list[IntervalReadings]) -> None:
    sensor, meter = day[1].sensor_readings[0], day[1].meter_batches[0]["readings"][0]
    stored = frozenset({(sensor["device_id"], day[1].moment), (meter["meter_id"], day[1].moment),
                        (sensor["device_id"], day[0].moment - timedelta(days=1))})  # another time: not sent
    tally = Tally(ExpectedAlerts(RULES, pv_meters(fleet)), stored)
    for interval in day[:2]:
        tally.sensor_accepted(interval.sensor_readings)
        tally.meters_produced(r for batch in interval.meter_batches for r in batch["readings"])
    assert (tally.sensor_readings_accepted, tally.sensor_readings_stored_before) == (60, 1)
    assert (tally.meter_readings_produced, tally.meter_readings_stored_before) == (240, 1)
