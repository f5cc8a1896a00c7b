"""`smartgrid report`: its options; pandas, scikit-learn and matplotlib are loaded only when it runs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from shared.analytics.api import query
from shared.config import Settings
from shared.params import BadParameter


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `report` to the `smartgrid` commands."""
    report = commands.add_parser(
        "report", help="per feeder: load, day-ahead forecast band, peak and alerts as report.png and report.html")
    report.add_argument("--feeder", action="append", required=True, dest="feeders", metavar="F",
                        help="a feeder ID (repeatable)")
    report.add_argument("--from", dest="start", metavar="T", help="RFC 3339 time with offset (default: --to - 24 h)")
    report.add_argument("--to", dest="end", metavar="T", help="RFC 3339 time with offset (default: now)")
    report.add_argument("--bucket", default="hour", choices=["15min", "hour"], help="load resolution (default hour)")
    report.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="output folder (default .)")
    report.add_argument("--analytics-url", metavar="URL",
                        help=".../api/v1/analytics (default: the running platform's)")
    report.add_argument("--alerts-url", metavar="URL", help=".../api/v1/alerts (default: the running platform's)")
    report.set_defaults(command=_report)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from local.report.build import Period
    from local.report.sources import SourceError, Sources
    from local.report.write import write_report

    given = {"from": args.start, "to": args.end, "bucket": args.bucket}
    try:
        bucket, start, end = query({name: value for name, value in given.items() if value}, datetime.now(UTC))
    except BadParameter as error:
        print(f"smartgrid report: --{error.field}: {error}", file=sys.stderr)
        return 2
    sources = Sources.resolve(settings, args.analytics_url, args.alerts_url)
    try:
        png, html = write_report(sources, args.feeders, Period(start, end, bucket), args.out)
    except (SourceError, aiohttp.ClientError) as error:
        print(f"smartgrid report: {error}", file=sys.stderr)
        return 1
    print(f"wrote {png} and {html}")
    return 0
