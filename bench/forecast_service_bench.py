"""Benchmark of the forecast function's per-entity work: training a model version and issuing a day.

    .venv/bin/python bench/forecast_service_bench.py [--weeks 52] [--max-iter 400]

On a synthetic 15-minute load (tests/unit/synthetic_load.py) of `--weeks` weeks, times what the
`train` job does per feeder or region (validate on the last week beside seasonal-naive, refit on
everything, serialize) and what the `forecast` job does (deserialize, fill, forecast 96 quarters),
each beside its raw limit measured in the same run: the bare HistGradientBoostingRegressor fits and
prediction on the same feature matrices. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from shared.forecast.features.frame import build_features  # noqa: E402
from shared.forecast.model.gradient_boosting import (  # noqa: E402
    BoostingSettings,
    GradientBoostingModel,
)
from shared.forecast.series import DAY  # noqa: E402
from shared.forecast.service.entity import STEP  # noqa: E402
from shared.forecast.service.history import WEATHER_COLUMNS  # noqa: E402
from shared.forecast.service.issuing import issue  # noqa: E402
from shared.forecast.service.training import TrainingOptions, fit, loads  # noqa: E402
from tests.unit.synthetic_load import synthetic_load  # noqa: E402


def seconds(work) -> tuple[float, object]:
    """Wall time of `work()` and its result."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main() -> int:
    """Time one training and one issue, each beside its raw limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--max-iter", type=int, default=BoostingSettings().max_iter)
    args = parser.parse_args()
    boosting = BoostingSettings(max_iter=args.max_iter)
    load = synthetic_load("2024-01-01", args.weeks)
    no_weather = pd.DataFrame(index=pd.DatetimeIndex([]), columns=list(WEATHER_COLUMNS), dtype=float)

    train_s, trained = seconds(lambda: fit(load, no_weather, TrainingOptions(boosting=boosting)))
    validation_end = trained.evaluation.holdout_start
    features = build_features(load, load.index)
    raw_fit_s = sum(seconds(lambda rows=rows: GradientBoostingModel(boosting).fit(features[rows], load[rows]))[0]
                    for rows in (load.index < validation_end, load.index == load.index))
    evaluation = trained.evaluation
    print(f"history: {args.weeks} weeks, {load.notna().sum()} quarters; max_iter {args.max_iter}")
    print(f"train one entity: {train_s:.2f} s (raw limit, the two bare fits: {raw_fit_s:.2f} s); "
          f"model {len(trained.model) / 1e6:.2f} MB")
    print(f"validation week: MAE model {evaluation.model.mae:.2f} kW, seasonal-naive {evaluation.baseline.mae:.2f} kW, "
          f"skill {evaluation.skill:+.3f}")

    day = load.index[-1].floor(DAY) + DAY
    model = loads(trained.model)
    issue_s, _ = seconds(lambda: issue(loads(trained.model), trained.features, load, no_weather, day))
    day_features = build_features(load, pd.date_range(day, day + DAY, freq=STEP, inclusive="left"))
    raw_predict_s, _ = seconds(lambda: model.predict(day_features))
    print(f"issue one day: {issue_s * 1000:.0f} ms (raw limit, the bare prediction: {raw_predict_s * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
