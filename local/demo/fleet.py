"""The simulated fleet: feeders, grid sensors, smart meters behind field gateways, and their readings.

Every random draw comes from a generator seeded with the run's seed: the fleet from
`<seed>/fleet`, the readings of interval k from `<seed>/<k>`, so a seed reproduces a run exactly.
Readings are catalogue datums in their JSON form (timestamps as RFC 3339 text). A meter's id names
its gateway (`MTR-<gateway>-<meter>`): the device registry keeps a meter behind the gateway it was
registered behind, so a fleet of another shape on the same database has meters of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from local.demo.options import Period
from local.demo.profiles import LoadProfile, pv_output_share

NOMINAL_V = 230.0
MAX_FEEDERS = 20
CENTRE = (51.0, 10.0)  # lat, lon: central Germany, where the BDEW profiles come from
REGIONS = ("north", "east", "south", "west")
RATED_CURRENTS_A = (250.0, 400.0, 630.0)
PHASES = ("l1", "l2", "l3")
# profile -> (share of meters, median annual kWh, spread (sigma of its log), share with PV, PV kWp range)
METER_KINDS: Mapping[str, tuple[float, float, float, float, tuple[float, float]]] = MappingProxyType({
    "h25": (0.85, 3200.0, 0.35, 0.30, (4.0, 12.0)),
    "g25": (0.12, 25000.0, 0.60, 0.10, (10.0, 30.0)),
    "l25": (0.03, 30000.0, 0.50, 0.25, (20.0, 60.0)),
})
# sigma of the log of a meter's noise from one interval to the next
LOAD_NOISE: Mapping[str, float] = MappingProxyType({"h25": 0.30, "g25": 0.12, "l25": 0.15})


@dataclass(frozen=True)
class Feeder:
    """A medium/low-voltage feeder: its customer mix and how its voltage follows its load."""

    feeder_id: str
    region: str
    lat: float
    lon: float
    household_share: float
    peak_utilisation: float
    boost_v: float
    sag_v: float


@dataclass(frozen=True)
class Sensor:
    """A grid sensor on a feeder, and how it posts its readings over HTTP."""

    device_id: str
    feeder: int
    rated_current_a: float
    loading: float
    position: float
    lat: float
    lon: float
    mode: str


@dataclass(frozen=True)
class Gateway:
    """A field gateway: collects its meters' readings, produces one batch per interval to Kafka."""

    gateway_id: str
    feeder: int
    encoding: str


@dataclass(frozen=True)
class Meter:
    """A smart meter: its load profile and annual consumption, its PV system (kWp, 0 if none), counters."""

    meter_id: str
    site_id: str
    gateway: int
    feeder: int
    profile: str
    annual_kwh: float
    pv_kwp: float
    position: float
    import_start_kwh: float
    export_start_kwh: float


@dataclass(frozen=True)
class Fleet:
    """Every simulated device."""

    feeders: tuple[Feeder, ...]
    sensors: tuple[Sensor, ...]
    gateways: tuple[Gateway, ...]
    meters: tuple[Meter, ...]

    def meters_of(self, gateway: int) -> list[int]:
        """Indices of the meters behind one gateway."""
        return [index for index, meter in enumerate(self.meters) if meter.gateway == gateway]


@dataclass(frozen=True)
class Conditions:
    """What every device of one interval shares: grid frequency, weather, the load shapes."""

    moment: datetime
    frequency_hz: float
    ambient_c: float
    pv_share: float
    profile_kw: Mapping[str, float]
    utilisation: tuple[float, ...]


@dataclass(frozen=True)
class IntervalReadings:
    """The readings of one interval: one per sensor, and one batch per gateway."""

    index: int
    moment: datetime
    sensor_readings: list[dict[str, Any]]
    meter_batches: list[dict[str, Any]]


def build_fleet(sensors: int, meters: int, gateways: int, seed: int) -> Fleet:
    """A fleet of `sensors` sensors on up to 20 feeders and `meters` meters spread over `gateways` gateways."""
    rng = random.Random(f"{seed}/fleet")
    feeders = tuple(_feeder(index, rng) for index in range(min(MAX_FEEDERS, sensors)))
    modes = _shares(rng, sensors, {"structured": 0.1, "batch": 0.1}, default="binary")
    sensor_list = tuple(_sensor(index, feeders, modes[index], rng) for index in range(sensors))
    encodings = _shares(rng, gateways, {"json": 0.15}, default="avro") if gateways > 1 else ["avro"]
    gateway_list = tuple(
        Gateway(f"GW-{index + 1:03d}", index % len(feeders), encodings[index]) for index in range(gateways)
    )
    meter_list = tuple(_meter(index, gateway_list[index % gateways], index % gateways, rng) for index in range(meters))
    return Fleet(feeders, sensor_list, gateway_list, meter_list)


def simulate(
    fleet: Fleet, period: Period, profiles: Mapping[str, LoadProfile], seed: int
) -> Iterator[IntervalReadings]:
    """The readings of every interval of the period, in order; meter counters carry over between intervals."""
    imports = [meter.import_start_kwh for meter in fleet.meters]
    exports = [meter.export_start_kwh for meter in fleet.meters]
    hours = period.interval.total_seconds() / 3600
    by_gateway = [fleet.meters_of(gateway) for gateway in range(len(fleet.gateways))]
    for index in range(period.count):
        rng = random.Random(f"{seed}/{index}")
        conditions = conditions_at(fleet, period, index, profiles, rng)
        sensor_readings = [sensor_reading(sensor, fleet.feeders[sensor.feeder], conditions, rng)
                           for sensor in fleet.sensors]
        meter_readings = []
        for number, meter in enumerate(fleet.meters):
            reading, import_kw, export_kw = meter_reading(
                meter, fleet.feeders[meter.feeder], conditions, imports[number], exports[number], rng
            )
            meter_readings.append(reading)
            imports[number] += import_kw * hours
            exports[number] += export_kw * hours
        batches = [{"gateway_id": gateway.gateway_id, "readings": [meter_readings[m] for m in by_gateway[number]]}
                   for number, gateway in enumerate(fleet.gateways)]
        yield IntervalReadings(index, conditions.moment, sensor_readings, batches)


def conditions_at(
    fleet: Fleet, period: Period, index: int, profiles: Mapping[str, LoadProfile], rng: random.Random
) -> Conditions:
    """The grid-wide conditions of interval `index`."""
    start = period.moment(index)
    end = start + period.interval
    middle = start + period.interval / 2
    profile_kw = {name: profile.mean_power_kw(start, end, 1.0) for name, profile in profiles.items()}
    day = start.date()
    peaks = {name: max(profile.day_shares(day)) * 4 for name, profile in profiles.items()}  # kW per kWh/a
    shape = {name: profile_kw[name] / peaks[name] for name in ("h25", "g25")}
    utilisation = tuple(
        feeder.peak_utilisation * (feeder.household_share * shape["h25"] + (1 - feeder.household_share) * shape["g25"])
        for feeder in fleet.feeders
    )
    return Conditions(
        moment=start,
        frequency_hz=50.0 + rng.gauss(0.0, 0.015),
        ambient_c=_ambient_c(middle),
        pv_share=pv_output_share(middle, *CENTRE) * rng.uniform(0.55, 1.0),
        profile_kw=profile_kw,
        utilisation=utilisation,
    )


def sensor_reading(sensor: Sensor, feeder: Feeder, conditions: Conditions, rng: random.Random) -> dict[str, Any]:
    """One sensor's reading: voltage sagging with its feeder's load, current following it, 50 Hz, pf ~0.95."""
    feeder_load = conditions.utilisation[sensor.feeder]
    load = feeder_load * sensor.loading
    voltage = {phase: round(_feeder_voltage(feeder, feeder_load, sensor.position) + rng.gauss(0.0, 0.4), 1)
               for phase in PHASES}
    current = {phase: round(max(0.0, sensor.rated_current_a * load * (1 + rng.gauss(0.0, 0.04))), 1)
               for phase in PHASES}
    power_factor = min(0.99, rng.gauss(0.95, 0.01))
    apparent_kva = sum(voltage[phase] * current[phase] for phase in PHASES) / 1000
    return {
        "device_id": sensor.device_id,
        "feeder_id": feeder.feeder_id,
        "location": {"lat": sensor.lat, "lon": sensor.lon},
        "timestamp": rfc3339(conditions.moment),
        "voltage_v": voltage,
        "current_a": current,
        "rated_current_a": sensor.rated_current_a,
        "frequency_hz": round(conditions.frequency_hz + rng.gauss(0.0, 0.002), 3),
        "active_power_kw": round(apparent_kva * power_factor, 2),
        "reactive_power_kvar": round(apparent_kva * math.sin(math.acos(power_factor)), 2),
        "power_factor": round(power_factor, 3),
        "temperature_c": round(conditions.ambient_c + 15 + 50 * load**2 + rng.gauss(0.0, 0.5), 1),
    }


def meter_reading(
    meter: Meter, feeder: Feeder, conditions: Conditions, import_kwh: float, export_kwh: float, rng: random.Random
) -> tuple[dict[str, Any], float, float]:
    """One meter's reading at the interval's start, and its import and export power (kW) over the interval."""
    noise = rng.lognormvariate(0.0, LOAD_NOISE[meter.profile])
    load_kw = meter.annual_kwh * conditions.profile_kw[meter.profile] * noise
    pv_kw = meter.pv_kwp * conditions.pv_share
    import_kw, export_kw = max(load_kw - pv_kw, 0.0), max(pv_kw - load_kw, 0.0)
    rise_v = min(4.0, export_kw * 0.4)
    base_v = _feeder_voltage(feeder, conditions.utilisation[meter.feeder], meter.position) + rise_v
    volts = [base_v + rng.gauss(0.0, 0.6) for _ in PHASES]
    weights = [max(0.1, 1 + rng.gauss(0.0, 0.35)) for _ in PHASES]
    amps = [(import_kw + export_kw) * 1000 * weight / sum(weights) / (volt * 0.97)
            for weight, volt in zip(weights, volts, strict=True)]
    registers = {
        "1.8.0": round(import_kwh, 3),
        "1.7.0": round(import_kw, 3),
        "32.7.0": round(volts[0], 1), "52.7.0": round(volts[1], 1), "72.7.0": round(volts[2], 1),
        "31.7.0": round(amps[0], 2), "51.7.0": round(amps[1], 2), "71.7.0": round(amps[2], 2),
        "14.7.0": round(conditions.frequency_hz + rng.gauss(0.0, 0.002), 3),
    }
    if meter.pv_kwp:
        registers["2.8.0"] = round(export_kwh, 3)
        registers["2.7.0"] = round(export_kw, 3)
    reading = {
        "meter_id": meter.meter_id,
        "site_id": meter.site_id,
        "feeder_id": feeder.feeder_id,
        "region": feeder.region,
        "timestamp": rfc3339(conditions.moment),
        "registers": registers,
    }
    return reading, import_kw, export_kw


def rfc3339(moment: datetime) -> str:
    """A UTC moment as RFC 3339 text with `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _feeder(index: int, rng: random.Random) -> Feeder:
    return Feeder(
        feeder_id=f"F-{index + 1:02d}",
        region=REGIONS[index % len(REGIONS)],
        lat=round(CENTRE[0] + rng.uniform(-0.8, 0.8), 4),
        lon=round(CENTRE[1] + rng.uniform(-1.2, 1.2), 4),
        household_share=rng.uniform(0.5, 0.95),
        peak_utilisation=rng.uniform(0.55, 0.85),
        boost_v=rng.uniform(2.0, 5.0),
        sag_v=rng.uniform(9.0, 14.0),
    )


def _sensor(index: int, feeders: tuple[Feeder, ...], mode: str, rng: random.Random) -> Sensor:
    feeder_index = index % len(feeders)
    feeder = feeders[feeder_index]
    return Sensor(
        device_id=f"SEN-{feeder.feeder_id}-{index // len(feeders) + 1:03d}",
        feeder=feeder_index,
        rated_current_a=rng.choice(RATED_CURRENTS_A),
        loading=rng.uniform(0.8, 1.0),
        position=rng.uniform(0.3, 1.0),
        lat=round(feeder.lat + rng.uniform(-0.05, 0.05), 5),
        lon=round(feeder.lon + rng.uniform(-0.05, 0.05), 5),
        mode=mode,
    )


def _meter(index: int, gateway: Gateway, gateway_index: int, rng: random.Random) -> Meter:
    profile = rng.choices(list(METER_KINDS), weights=[kind[0] for kind in METER_KINDS.values()])[0]
    _, median_kwh, spread, pv_share, (least_kwp, most_kwp) = METER_KINDS[profile]
    annual_kwh = round(median_kwh * rng.lognormvariate(0.0, spread), 0)
    pv_kwp = round(rng.uniform(least_kwp, most_kwp), 1) if rng.random() < pv_share else 0.0
    return Meter(
        meter_id=f"MTR-{gateway_index + 1:03d}-{index + 1:06d}",
        site_id=f"SITE-{index + 1:06d}",
        gateway=gateway_index,
        feeder=gateway.feeder,
        profile=profile,
        annual_kwh=annual_kwh,
        pv_kwp=pv_kwp,
        position=rng.uniform(0.4, 1.0),
        import_start_kwh=round(annual_kwh * rng.uniform(0.5, 12.0), 3),
        export_start_kwh=round(pv_kwp * 950 * rng.uniform(0.5, 8.0), 3) if pv_kwp else 0.0,
    )


def _shares(rng: random.Random, count: int, shares: Mapping[str, float], default: str) -> list[str]:
    """`count` labels in random order: each of `shares` on its share of them (at least one), `default` on the rest."""
    labels: list[str] = []
    for label, share in shares.items():
        labels += [label] * max(1, round(share * count))
    labels = labels[: max(0, count - 1)]  # at least one default
    labels += [default] * (count - len(labels))
    rng.shuffle(labels)
    return labels


def _feeder_voltage(feeder: Feeder, utilisation: float, position: float) -> float:
    return NOMINAL_V + feeder.boost_v - feeder.sag_v * utilisation * position


def _ambient_c(moment: datetime) -> float:
    """A plausible outdoor temperature: seasonal mean plus a daily swing peaking mid-afternoon."""
    season = 10.0 - 9.0 * math.cos(2 * math.pi * (moment.timetuple().tm_yday - 15) / 365)
    hours = moment.hour + moment.minute / 60
    return season + 5.0 * math.cos(2 * math.pi * (hours - 15) / 24)
