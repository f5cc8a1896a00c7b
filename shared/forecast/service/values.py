"""Values leaving the feature code for PostgreSQL and JSON: aware UTC times, None for NaN."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd


def utc(moment: pd.Timestamp) -> datetime:
    """A naive UTC time of the feature code as an aware datetime."""
    return moment.tz_localize(UTC).to_pydatetime()


def finite(value: float) -> float | None:
    """The value as a float, or None for NaN (an undefined MAPE, skill or baseline)."""
    return None if math.isnan(value) else float(value)
