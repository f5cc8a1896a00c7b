"""The error of forecasting input that cannot be used."""

from __future__ import annotations


class ForecastInputError(ValueError):
    """Raised when a series, a column or an option cannot be forecast from; names what and why."""
