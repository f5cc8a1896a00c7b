"""`smartgrid forecast evaluate`: its options; pandas and scikit-learn are loaded only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.config import Settings
from shared.forecast.defaults import (
    DEFAULT_COUNTRY,
    DEFAULT_FREQ,
    DEFAULT_HOLDOUT_WEEKS,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `forecast evaluate` to the `smartgrid` commands."""
    forecast = commands.add_parser("forecast", help="day-ahead load forecasting")
    forecast_commands = forecast.add_subparsers(required=True, metavar="COMMAND")
    evaluation = forecast_commands.add_parser(
        "evaluate",
        help="train on all but the last weeks of a load series, then score day-ahead forecasts of those weeks",
    )
    evaluation.add_argument("--csv", required=True, type=Path, metavar="FILE",
                            help="a CSV file with a header row (delimiter , ; tab or |)")
    evaluation.add_argument("--time-column", required=True, metavar="C", help="the column of timestamps")
    evaluation.add_argument("--value-column", required=True, metavar="C", help="the column of load values")
    evaluation.add_argument("--freq", default=DEFAULT_FREQ,
                            help=f"interval the series is averaged to, dividing one day (default {DEFAULT_FREQ})")
    evaluation.add_argument("--holdout-weeks", type=_holdout_weeks, default=DEFAULT_HOLDOUT_WEEKS, metavar="N",
                            help=f"last weeks held out of training and forecast (default {DEFAULT_HOLDOUT_WEEKS})")
    evaluation.add_argument("--country", default=DEFAULT_COUNTRY,
                            help=f"public holidays of this country, DE-BY for a region (default {DEFAULT_COUNTRY})")
    evaluation.add_argument("--weather-column", action="append", default=[], metavar="C",
                            help="a numeric weather column of the same file, used as a feature (repeatable)")
    evaluation.set_defaults(command=_evaluate)


def _evaluate(args: argparse.Namespace, _settings: Settings) -> int:
    from local.forecast_evaluation import run_evaluation

    return run_evaluation(
        args.csv, args.time_column, args.value_column, freq=args.freq, holdout_weeks=args.holdout_weeks,
        country=args.country, weather_columns=args.weather_column,
    )


def _holdout_weeks(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of weeks, at least 1, found {text!r}")
    return int(text)
