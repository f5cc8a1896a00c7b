"""The report's PNG: per feeder a load panel (forecast band, peak) above an alert strip on the same time axis."""

from __future__ import annotations

from io import BytesIO

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from local.report.build import FeederReport
from shared.alerting.rules import SEVERITIES

SEVERITY_COLOURS = {"info": "tab:blue", "warning": "tab:orange", "critical": "tab:red", "emergency": "black"}


def render_png(reports: list[FeederReport]) -> bytes:
    """The PNG of every feeder's panels, one row pair per feeder."""
    figure, axes = plt.subplots(
        2 * len(reports), 1, figsize=(12, 5 * len(reports)), squeeze=False,
        gridspec_kw={"height_ratios": [4, 1] * len(reports)},
    )
    try:
        for index, report in enumerate(reports):
            load_axis, alert_axis = axes[2 * index][0], axes[2 * index + 1][0]
            alert_axis.sharex(load_axis)
            _load_panel(load_axis, report)
            _alert_strip(alert_axis, report)
        figure.tight_layout()
        buffer = BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _load_panel(axis: plt.Axes, report: FeederReport) -> None:
    axis.plot(report.load.index, report.load.to_numpy(), color="tab:blue", label="load (kW)")
    band = report.day_ahead.band
    axis.plot(band.index, band["forecast"].to_numpy(), color="tab:green", label=f"forecast: {report.day_ahead.method}")
    axis.fill_between(band.index, band["low"].to_numpy(dtype=float), band["high"].to_numpy(dtype=float),
                      color="tab:green", alpha=0.2, label=f"± MAE {report.day_ahead.mae:.2f} kW")
    if report.peak is not None:
        axis.plot([report.peak.at], [report.peak.kw], marker="v", color="tab:red", linestyle="none",
                  label=f"peak {report.peak.kw:.1f} kW at {report.peak.at:%Y-%m-%d %H:%M}")
    axis.set_title(f"feeder {report.feeder}")
    axis.set_ylabel("kW")
    axis.legend(loc="upper left", fontsize="small")


def _alert_strip(axis: plt.Axes, report: FeederReport) -> None:
    for row, severity in enumerate(SEVERITIES):
        times = [_utc(alert["raised_at"]) for alert in report.alerts if alert.get("severity") == severity]
        axis.plot(times, [row] * len(times), marker="o", linestyle="none", color=SEVERITY_COLOURS[severity])
    axis.set_yticks(range(len(SEVERITIES)), SEVERITIES, fontsize="small")
    axis.set_ylim(-0.5, len(SEVERITIES) - 0.5)
    axis.set_ylabel("alerts")


def _utc(text: str) -> pd.Timestamp:
    """An RFC 3339 time as a UTC-naive timestamp, the report's time axis."""
    return pd.Timestamp(text).tz_convert("UTC").tz_localize(None)
