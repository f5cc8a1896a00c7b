"""Benchmark of the day-ahead load model against the seasonal-naive baseline on SimBench's load profiles.

    .venv/bin/python bench/forecast_bench.py [--profile H0-A_pload ...] [--holdout-weeks N] [--country DE]

SimBench's LoadProfile.csv (2016, every 15 minutes; fetched once by `local.simbench`) holds about
a hundred active-power profiles (`*_pload`): households, commercial, agriculture, heat pumps, EV
charging, grid levels. For each (all of them by default), the same evaluation as
`smartgrid forecast evaluate`: trained on all but the last weeks, each held-out day forecast at its
midnight. One line per profile (MAE of the model and of the baseline, skill, training time), then
how many profiles the model beats on MAE. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.forecast_evaluation import read_columns  # noqa: E402
from local.simbench import simbench_load_profiles  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.forecast.defaults import (  # noqa: E402
    DEFAULT_COUNTRY,
    DEFAULT_FREQ,
    DEFAULT_HOLDOUT_WEEKS,
)
from shared.forecast.evaluation import evaluate  # noqa: E402
from shared.forecast.series import interval, parse_times, regular_series  # noqa: E402

TIME_COLUMN = "time"


def main() -> int:
    """Evaluate the model on each profile and print one line each, then the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", default=[], help="a *_pload column (repeatable; default all)")
    parser.add_argument("--holdout-weeks", type=int, default=DEFAULT_HOLDOUT_WEEKS)
    parser.add_argument("--country", default=DEFAULT_COUNTRY)
    args = parser.parse_args()

    path = simbench_load_profiles(Settings.from_env().state_dir / "datasets")
    header = path.open(encoding="utf-8").readline().strip().split(";")
    profiles = args.profile or [column for column in header if column.endswith("_pload")]
    frame = read_columns(path, {column: "--profile" for column in [TIME_COLUMN, *profiles]})
    times = parse_times(frame[TIME_COLUMN], TIME_COLUMN)
    step = interval(DEFAULT_FREQ)

    print(f"{'profile':<28}{'MAE model':>12}{'MAE naive':>12}{'skill':>8}{'fit s':>7}")
    beaten: list[str] = []
    not_beaten: list[str] = []
    skills: list[float] = []
    for profile in profiles:
        series = regular_series(times, frame[profile], profile, step)
        if series.std() == 0:
            print(f"{profile:<28}  constant, skipped")
            continue
        result = evaluate(series, step, holdout_weeks=args.holdout_weeks, country=args.country)
        (beaten if result.model.mae < result.baseline.mae else not_beaten).append(profile)
        if not math.isnan(result.skill):
            skills.append(result.skill)
        print(f"{profile:<28}{result.model.mae:>12.4g}{result.baseline.mae:>12.4g}{result.skill:>+8.3f}"
              f"{result.training_seconds:>7.1f}", flush=True)
    print(f"\nthe model beats seasonal-naive on MAE for {len(beaten)} of {len(beaten) + len(not_beaten)} profiles "
          f"({args.holdout_weeks} held-out weeks); median skill {statistics.median(skills):+.3f}")
    print("not beaten: " + (", ".join(not_beaten) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
