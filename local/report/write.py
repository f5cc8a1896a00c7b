"""Write report.png and report.html of the feeders over a period."""

from __future__ import annotations

from pathlib import Path

from local import aio
from local.report.build import Period, feeder_reports
from local.report.figure import render_png
from local.report.page import render_html
from local.report.sources import Sources


def write_report(sources: Sources, feeders: list[str], period: Period, out: Path) -> tuple[Path, Path]:
    """Fetch, forecast and draw; answer the paths of report.png and report.html."""
    reports = aio.run(feeder_reports(sources, feeders, period))
    png = render_png(reports)
    out.mkdir(parents=True, exist_ok=True)
    png_path, html_path = out / "report.png", out / "report.html"
    png_path.write_bytes(png)
    html_path.write_text(render_html(reports, period, png), encoding="utf-8")
    return png_path, html_path
