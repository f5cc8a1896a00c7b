"""The evaluation behind `smartgrid forecast evaluate`: a CSV column in, a table of errors out."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd

from shared.forecast.errors import ForecastInputError
from shared.forecast.evaluation import Evaluation, evaluate
from shared.forecast.features.holidays import holiday_calendar
from shared.forecast.series import DAY, interval, parse_times, regular_series

DELIMITERS = ",;\t|"
LISTED_COLUMNS = 12
T = TypeVar("T")


def run_evaluation(
    path: Path,
    time_column: str,
    value_column: str,
    *,
    freq: str,
    holdout_weeks: int,
    country: str,
    weather_columns: Sequence[str] = (),
) -> int:
    """Evaluate the model on a CSV column and print the table; exit code 2 and a message on unusable input."""
    try:
        step = _option("--freq", lambda: interval(freq))
        _option("--country", lambda: holiday_calendar(country, years=[]))
        columns = {time_column: "--time-column", value_column: "--value-column"}
        columns.update((column, "--weather-column") for column in weather_columns)
        frame = read_columns(path, columns)
        times = parse_times(frame[time_column], time_column)
        series = regular_series(times, frame[value_column], value_column, step)
        weather = None
        if weather_columns:
            weather = pd.concat([regular_series(times, frame[name], name, step) for name in weather_columns], axis=1)
        result = evaluate(series, step, holdout_weeks=holdout_weeks, country=country, weather=weather)
    except ForecastInputError as error:
        print(f"smartgrid forecast evaluate: {error}", file=sys.stderr)
        return 2
    print(format_evaluation(result, value_column))
    return 0


def read_columns(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """The `columns` of a CSV file as text; `columns` maps each to the option that named it, for errors."""
    if not path.is_file():
        raise ForecastInputError(f"--csv: expected a CSV file, found nothing at {path}")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        first_line = stream.readline()
    if not first_line.strip():
        raise ForecastInputError(f"--csv: expected a header row in {path}, found an empty first line")
    delimiter = max(DELIMITERS, key=first_line.count)
    header = next(csv.reader([first_line], delimiter=delimiter))
    for column, option in columns.items():
        if column not in header:
            listed = ", ".join(header[:LISTED_COLUMNS]) + (", ..." if len(header) > LISTED_COLUMNS else "")
            raise ForecastInputError(f"{option}: expected a column {column!r} in {path}, found {listed}")
    return pd.read_csv(path, sep=delimiter, usecols=list(columns), dtype=str, encoding="utf-8-sig")


def format_evaluation(result: Evaluation, name: str) -> str:
    """The evaluation as a small table: MAE, RMSE and MAPE of the model and the baseline, then the skill."""
    rows = [("model", result.model), ("seasonal-naive", result.baseline)]
    lines = [
        f"{name}: trained on {result.training_start.date()} to {(result.holdout_start - DAY).date()} "
        f"({result.training_values:,} values) in {result.training_seconds:.1f} s",
        f"held out {result.holdout_weeks} week(s), {result.holdout_start.date()} to "
        f"{(result.holdout_end - DAY).date()} ({result.holdout_values:,} values), each day forecast at its midnight",
        "",
        f"{'forecast':<16}{'MAE':>12}{'RMSE':>12}{'MAPE %':>10}",
        *(f"{label:<16}{scores.mae:>12.4g}{scores.rmse:>12.4g}{scores.mape:>10.1f}" for label, scores in rows),
        "",
        f"skill (1 - MAE model / MAE seasonal-naive): {result.skill:+.3f}",
    ]
    return "\n".join(lines)


def _option(option: str, check: Callable[[], T]) -> T:
    try:
        return check()
    except ForecastInputError as error:
        raise ForecastInputError(f"{option}: {error}") from None
