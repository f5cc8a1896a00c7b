"""Provider adapter: replay of the DWD test reference years (TRY 2010) shipped in the demandlib package.

Each of the 15 German TRY regions has one hourly "mean year" (`demandlib/vdi/resources_weather/
TRY2010_<NN>_Jahr.dat`); a station replays the file whose reference station is nearest. "Now" maps to
the same month, day and hour (CET, hour-ending as in the files; 29 February reads 28 February).
The files are read straight from the installed package: importing demandlib would pull in pandas.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.config import WeatherStation
from shared.weather.observation import Observation

CET = timezone(timedelta(hours=1))
REGIONS = range(1, 16)
_POSITION = re.compile(r"Lage:\s*(\d+)°(\d+)'N.*?(\d+)°(\d+)'O")
_COLUMNS = ("MM", "DD", "HH", "N", "WG", "t", "RF", "B", "D")
HourKey = tuple[int, int, int]  # month, day, hour ending (1..24, CET)


class ReplayDataMissing(FileNotFoundError):
    """Raised when the demandlib package (which ships the TRY files) is not installed."""


@dataclass(frozen=True)
class ReferenceYear:
    """One TRY file: its reference station's position and the measures of every hour."""

    path: Path
    latitude: float
    longitude: float
    hours: dict[HourKey, tuple[float, ...]]  # N, WG, t, RF, B, D

    def observation(self, station: WeatherStation, at: datetime) -> Observation:
        """The station's observation at `at`: the file's values for the same hour of the year."""
        octas, wind, temperature, humidity, direct, diffuse = self.hours[hour_key(at)]
        return Observation(
            station_id=station.id,
            region=station.region,
            timestamp=at,
            temperature_c=temperature,
            ghi_w_m2=direct + diffuse,
            wind_speed_m_s=wind,
            cloud_cover_pct=None if octas > 8 else round(octas / 8 * 100, 1),
            relative_humidity_pct=humidity,
        )


def hour_key(at: datetime) -> HourKey:
    """The file row of the hour in progress at `at`: CET month, day and hour ending."""
    local = at.astimezone(CET)
    day = 28 if (local.month, local.day) == (2, 29) else local.day
    return local.month, day, local.hour + 1


def read_reference_year(path: Path) -> ReferenceYear:
    """Parse one TRY 2010 file: the position in its header, then the rows after `***`."""
    text = path.read_text(encoding="utf-8")
    position = _POSITION.search(text)
    header, marker, rows = text.partition("***")
    if position is None or not marker:
        raise ValueError(f"{path}: expected a DWD TRY 2010 file (a `Lage:` line and a `***` marker)")
    names = header.strip().splitlines()[-1].split()
    columns = [names.index(name) for name in _COLUMNS]
    hours: dict[HourKey, tuple[float, ...]] = {}
    for line in rows.strip().splitlines():
        fields = line.split()
        month, day, hour, *values = (float(fields[column]) for column in columns)
        hours[int(month), int(day), int(hour)] = tuple(values)
    degrees = [int(part) for part in position.groups()]
    return ReferenceYear(path, degrees[0] + degrees[1] / 60, degrees[2] + degrees[3] / 60, hours)


@functools.cache
def reference_years(data_dir: Path) -> tuple[ReferenceYear, ...]:
    """Every TRY region's reference year in `data_dir`, read once per process."""
    return tuple(read_reference_year(data_dir / f"TRY2010_{region:02d}_Jahr.dat") for region in REGIONS)


def try_data_dir() -> Path:
    """demandlib's `vdi/resources_weather` folder, found without importing demandlib."""
    spec = importlib.util.find_spec("demandlib")
    if spec is None or not spec.submodule_search_locations:
        raise ReplayDataMissing("the replay weather needs the demandlib package (pip install demandlib)")
    return Path(spec.submodule_search_locations[0]) / "vdi" / "resources_weather"


def nearest(years: tuple[ReferenceYear, ...], station: WeatherStation) -> ReferenceYear:
    """The reference year whose station is nearest (equirectangular distance) to `station`."""
    scale = math.cos(math.radians(station.latitude))
    return min(years, key=lambda y: (y.latitude - station.latitude) ** 2
               + ((y.longitude - station.longitude) * scale) ** 2)


class Replay:
    """Observations from the nearest DWD test reference year, at the same time of year."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir

    async def observe(self, stations: tuple[WeatherStation, ...], at: datetime) -> list[Observation]:
        """Each station's reference-year values for the hour of the year in progress at `at`."""
        years = reference_years(self._data_dir or try_data_dir())
        return [nearest(years, station).observation(station, at) for station in stations]

    async def close(self) -> None:
        """Nothing to release."""
