"""Load shapes: the BDEW 2025 standard load profiles shipped with demandlib, and a clear-sky PV shape.

The BDEW tables (`demandlib/bdew/bdew_data/<name>.csv`) hold, for each quarter hour of the day
and each month and day type (WT weekday, SA Saturday, FT Sunday or holiday), the energy in kWh
that a customer with 1,000,000 kWh a year draws in that quarter hour. The household profile H25
is dynamic: the table values are scaled by BDEW's fourth-degree polynomial of the day of the year.
The files are read straight from the installed package: importing demandlib would pull in pandas.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

PROFILES = ("h25", "g25", "l25")
DYNAMIC_PROFILES = frozenset({"h25"})
SLOTS_PER_DAY = 96
SLOT = timedelta(minutes=15)
TABLE_ANNUAL_KWH = 1_000_000.0
DAY_TYPES = ("WT", "SA", "FT")


class ProfileDataMissing(FileNotFoundError):
    """Raised when the demandlib package (which ships the BDEW tables) is not installed."""


@dataclass(frozen=True)
class LoadProfile:
    """One BDEW profile: (month, day type) -> 96 quarter-hour shares of the annual energy."""

    name: str
    shares: dict[tuple[int, str], tuple[float, ...]]

    def day_shares(self, day: date) -> tuple[float, ...]:
        """The 96 quarter-hour shares of the annual energy on `day` (holidays not considered)."""
        shares = self.shares[day.month, day_type(day)]
        if self.name not in DYNAMIC_PROFILES:
            return shares
        factor = dynamisation_factor(day.timetuple().tm_yday)
        return tuple(share * factor for share in shares)

    def mean_power_kw(self, start: datetime, end: datetime, annual_kwh: float) -> float:
        """The mean power in kW from `start` to `end` of a customer using `annual_kwh` a year."""
        return energy_kwh(self, start, end, annual_kwh) / ((end - start).total_seconds() / 3600)


def load_profile(name: str, data_dir: Path | None = None) -> LoadProfile:
    """Read one BDEW profile (`h25`, `g25`, `l25`, ...) from demandlib's data folder."""
    path = (data_dir or bdew_data_dir()) / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    months, day_types, slots = rows[0][1:], rows[1][1:], rows[2:]
    if len(slots) != SLOTS_PER_DAY:
        raise ValueError(f"{path}: expected {SLOTS_PER_DAY} quarter-hour rows, found {len(slots)}")
    month_numbers = {month: number for number, month in enumerate(dict.fromkeys(months), start=1)}
    shares = {
        (month_numbers[month], kind): tuple(float(row[column]) / TABLE_ANNUAL_KWH for row in slots)
        for column, (month, kind) in enumerate(zip(months, day_types, strict=True), start=1)
    }
    return LoadProfile(name, shares)


def bdew_data_dir() -> Path:
    """demandlib's `bdew/bdew_data` folder, found without importing demandlib."""
    spec = importlib.util.find_spec("demandlib")
    if spec is None or not spec.submodule_search_locations:
        raise ProfileDataMissing("expected the PyPI package demandlib (it ships the BDEW load profiles), found none")
    return Path(next(iter(spec.submodule_search_locations))) / "bdew" / "bdew_data"


def day_type(day: date) -> str:
    """BDEW's day type: WT (Monday to Friday), SA (Saturday), FT (Sunday)."""
    return DAY_TYPES[min(max(day.weekday() - 4, 0), 2)]


def dynamisation_factor(day_of_year: int) -> float:
    """BDEW's seasonal factor of the dynamic household profile."""
    d = float(day_of_year)
    return -3.92e-10 * d**4 + 3.2e-7 * d**3 - 7.02e-5 * d**2 + 0.0021 * d + 1.24


def energy_kwh(profile: LoadProfile, start: datetime, end: datetime, annual_kwh: float) -> float:
    """The energy drawn from `start` to `end` (UTC) by a customer of `profile` using `annual_kwh` a year."""
    total, moment = 0.0, start
    while moment < end:
        midnight = datetime(moment.year, moment.month, moment.day, tzinfo=moment.tzinfo)
        slot = int((moment - midnight) / SLOT)
        slot_end = min(midnight + (slot + 1) * SLOT, end)
        total += profile.day_shares(moment.date())[slot] * ((slot_end - moment) / SLOT)
        moment = slot_end
    return total * annual_kwh


def solar_elevation(moment: datetime, lat: float, lon: float) -> float:
    """The sun's elevation in degrees at a place and UTC moment (declination and hour angle)."""
    day_of_year = moment.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day_of_year) / 365)
    solar_hours = moment.hour + moment.minute / 60 + moment.second / 3600 + lon / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    latitude = math.radians(lat)
    sine = (math.sin(latitude) * math.sin(declination)
            + math.cos(latitude) * math.cos(declination) * math.cos(hour_angle))
    return math.degrees(math.asin(max(-1.0, min(1.0, sine))))


def pv_output_share(moment: datetime, lat: float, lon: float) -> float:
    """The share of its peak power (kWp) a clear-sky PV system delivers: 0 at night, about 0.8 at most."""
    elevation = solar_elevation(moment, lat, lon)
    return 0.8 * math.sin(math.radians(elevation)) ** 1.2 if elevation > 0 else 0.0
