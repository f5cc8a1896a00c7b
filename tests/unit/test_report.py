"""The pure parts of `smartgrid report`: load series of aggregate rows, peak, forecast band and method."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from local.report.forecast import MODEL, NAIVE, day_ahead
from local.report.series import band, history_days, load_kw, peak

HOUR = pd.Timedelta(hours=1)


def _row(start: str, energy_kwh: float | None) -> dict[str, object]:
    return {"bucket_start": start, "energy_kwh": energy_kwh, "readings": 4}


def test_load_kw_divides_energy_by_bucket_hours_and_keeps_gaps() -> None:
    rows = [_row("2026-11-20T00:00:00+00:00", 3.0), _row("2026-11-20T01:30:00+01:00", 1.0)]
    series = load_kw(rows, pd.Timedelta(minutes=15))
    assert list(series.index) == list(pd.date_range("2026-11-20 00:00", periods=3, freq="15min"))
    assert series.iloc[0] == 12.0 and math.isnan(series.iloc[1]) and series.iloc[2] == 4.0


def test_load_kw_of_no_rows_is_empty() -> None:
    assert load_kw([], HOUR).empty


def test_peak_is_the_highest_known_value() -> None:
    series = pd.Series([1.0, np.nan, 7.5, 3.0], index=pd.date_range("2026-11-20", periods=4, freq="h"))
    found = peak(series)
    assert found is not None and found.kw == 7.5 and found.at == pd.Timestamp("2026-11-20 02:00")
    assert peak(pd.Series([np.nan], index=series.index[:1])) is None


def test_band_is_forecast_plus_minus_mae_not_below_zero() -> None:
    result = band(pd.Series([1.0, 5.0]), 2.0)
    assert result["low"].tolist() == [0.0, 3.0] and result["high"].tolist() == [3.0, 7.0]
    assert result["forecast"].tolist() == [1.0, 5.0]


def _daily_shape(days: int) -> pd.Series:
    index = pd.date_range("2026-10-01", periods=days * 24, freq="h")
    return pd.Series(10 + 5 * np.sin(2 * np.pi * index.hour / 24), index=index)


def test_short_history_gets_seasonal_naive_and_says_so() -> None:
    history = _daily_shape(10)
    result = day_ahead(history, history.index[-1].ceil("D"), HOUR)
    assert history_days(history) < 28 and result.method == NAIVE and "fewer than 28" in result.note
    assert len(result.band) == 24
    assert np.allclose(result.band["forecast"].to_numpy(), history.iloc[-24 * 7:-24 * 6].to_numpy())
    assert result.mae == 0.0


def test_four_weeks_of_history_get_the_model() -> None:
    history = _daily_shape(35)
    result = day_ahead(history, history.index[-1].ceil("D"), HOUR)
    assert result.method == MODEL and len(result.band) == 24 and result.mae < 1.0
    assert (result.band["high"] >= result.band["forecast"]).all()
