"""The report's HTML: the PNG embedded, then per feeder its figures and alerts in tables."""

from __future__ import annotations

import base64
from html import escape

from local.report.build import FeederReport, Period


def render_html(reports: list[FeederReport], period: Period, png: bytes) -> str:
    """A self-contained HTML page of the report."""
    image = base64.b64encode(png).decode("ascii")
    sections = "\n".join(_section(report) for report in reports)
    title = f"smartgrid report {period.start.isoformat()} to {period.end.isoformat()}"
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style></head>\n"
            f"<body><h1>{escape(title)}</h1><p>{escape(period.bucket)} buckets, times UTC</p>\n"
            f"<img alt=\"load, forecast band, peak and alerts per feeder\" src=\"data:image/png;base64,{image}\">\n"
            f"{sections}\n</body></html>\n")


def _section(report: FeederReport) -> str:
    peak = ("no load in the period" if report.peak is None
            else f"{report.peak.kw:.2f} kW at {report.peak.at:%Y-%m-%d %H:%M}")
    forecast = report.day_ahead
    day = "none" if forecast.band.empty else f"{forecast.band.index[0]:%Y-%m-%d}"
    figures = _table(["figure", "value"], [
        ["peak", peak],
        ["mean load", f"{report.load.mean():.2f} kW" if report.load.notna().any() else "none"],
        ["forecast day", day],
        ["forecast method", forecast.method],
        ["band", f"forecast ± {forecast.mae:.2f} kW ({forecast.note})"],
        ["forecast peak", f"{forecast.band['forecast'].max():.2f} kW" if forecast.band["forecast"].notna().any()
         else "none"],
        ["alerts", str(len(report.alerts))],
    ])
    alerts = _table(["raised at", "severity", "rule", "device", "status", "message"], [
        [alert.get("raised_at"), alert.get("severity"), alert.get("rule_id"), alert.get("device_id"),
         alert.get("status"), alert.get("message")] for alert in report.alerts
    ])
    return f"<h2>feeder {escape(report.feeder)}</h2>\n{figures}\n<h3>alerts</h3>\n{alerts}"


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if cell is None else str(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
