"""`smartgrid forecast evaluate` on small CSV files: the table, and exit code 2 naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from local.cli import main
from tests.unit.synthetic_load import synthetic_load


@pytest.fixture(scope="module")
def load_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven weeks of hourly load with day-first local timestamps, `;`-separated, and a temperature column."""
    load = synthetic_load(start="2024-03-04", weeks=7, freq="1h")
    path = tmp_path_factory.mktemp("forecast") / "load.csv"
    frame = pd.DataFrame({
        "Zeit": load.index.strftime("%d.%m.%Y %H:%M"),
        "Last": load.round(3).to_numpy(),
        "Temperatur": np.round(10 + 5 * np.sin(np.arange(len(load)) / 24), 1),
    })
    frame.to_csv(path, sep=";", index=False)
    return path


def evaluate(path: Path, *options: str) -> int:
    """Run the command on `path` with the time column Zeit and the value column Last unless `options` say otherwise."""
    defaults = ["--time-column", "Zeit", "--value-column", "Last", "--freq", "1h"]
    return main(["forecast", "evaluate", "--csv", str(path), *defaults, *options])


def test_the_table_gives_both_forecasts_and_the_skill(load_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate(load_csv, "--holdout-weeks", "1", "--weather-column", "Temperatur") == 0
    out = capsys.readouterr().out
    assert "held out 1 week(s), 2024-04-15 to 2024-04-21 (168 values)" in out
    model = next(line for line in out.splitlines() if line.startswith("model"))
    baseline = next(line for line in out.splitlines() if line.startswith("seasonal-naive"))
    assert float(model.split()[1]) < float(baseline.split()[1])
    assert "skill (1 - MAE model / MAE seasonal-naive): +" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--value-column", "Verbrauch"], "--value-column: expected a column 'Verbrauch'"),
        (["--time-column", "Uhrzeit"], "--time-column: expected a column 'Uhrzeit'"),
        (["--time-column", "Last"], "Last: expected a timestamp, found '"),
        (["--value-column", "Zeit"], "Zeit: expected a number, found '04.03.2024 00:00' in row 1"),
        (["--holdout-weeks", "4"], "Last: expected at least 56 days of data (28 to train, 28 held out), found 49.0"),
        (["--freq", "7min"], "--freq: expected an interval that divides one day"),
        (["--freq", "soon"], "--freq: expected a pandas frequency"),
        (["--country", "XX"], "--country: expected a country code"),
    ],
)
def test_unusable_input_exits_2_naming_the_option_or_column(
    load_csv: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert evaluate(load_csv, *options) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_and_a_bad_week_count_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate(tmp_path / "none.csv") == 2
    assert "--csv: expected a CSV file, found nothing at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        evaluate(tmp_path / "none.csv", "--holdout-weeks", "0")
    assert exit_info.value.code == 2
    assert "--holdout-weeks: expected a whole number of weeks, at least 1, found '0'" in capsys.readouterr().err
