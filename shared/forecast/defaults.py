"""Defaults of the forecasting options, importable without pandas or scikit-learn (the CLI's parser uses them)."""

from __future__ import annotations

DEFAULT_FREQ = "15min"
DEFAULT_HOLDOUT_WEEKS = 2
DEFAULT_COUNTRY = "DE"
