"""`smartgrid analytics rebuild`: recompute the aggregates of a time range from the stored readings.

The readings come from the readings domain through its API (SMARTGRID_READINGS_URL, else the running
platform's `readings` endpoint), never from its database: page by page (one page in memory at a time),
checked against the catalogue and turned into register points as the live path does, they replace the
analytics database's points of the range; then the range's aggregates are recomputed from them. The API
wants a token of role analyst or admin: the command line's (local/users_client.py `cli_token`).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from local import aio
from local.identity_cli import cli_token_if_any
from local.state import PlatformState
from shared.analytics.aggregator import Aggregator
from shared.analytics.cache import AnswerCache
from shared.analytics.points import Point, distinct_points
from shared.auth.client import TokenRefused, TokenUnavailable
from shared.config import Settings
from shared.params import BadParameter, time_param
from shared.readings.client import (
    ReadingsClient,
    ReadingsRefused,
    ReadingsUnavailable,
    is_transient,
)
from shared.readings.decoding import METER_READING
from shared.resilience import CircuitOpen, Downstreams
from shared.stores import redis
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from shared.validation.validators import InvalidData

DAY = timedelta(days=1)
FETCH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did: the readings it fetched, and the (level, id) of every entity it rebuilt."""

    readings: int
    entities: set[tuple[str, str]]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `analytics rebuild` to the `smartgrid` commands."""
    analytics = commands.add_parser("analytics", help="aggregates of meter readings")
    analytics_commands = analytics.add_subparsers(required=True, metavar="COMMAND")
    rebuild = analytics_commands.add_parser(
        "rebuild", help="recompute the aggregates of whole UTC days from the stored readings, fetched through "
                        "the readings API (after a fix to the aggregation, or points or aggregates lost)")
    rebuild.add_argument("--from", dest="start", required=True, type=_time, metavar="T",
                         help="RFC 3339 time with offset; rounded down to its UTC day")
    rebuild.add_argument("--to", dest="end", required=True, type=_time, metavar="T",
                         help="RFC 3339 time with offset; rounded up to a UTC day")
    rebuild.set_defaults(command=_rebuild)


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    start, end = _floor(args.start), _ceil(args.end)
    if start >= end:
        raise SystemExit(f"--from: expected a time before --to ({args.end.isoformat()}), found {args.start.isoformat()}")
    try:
        rebuilt = aio.run(rebuild(settings, start, end))
    except (ReadingsUnavailable, ReadingsRefused, CircuitOpen, InvalidData, TokenUnavailable, TokenRefused) as error:
        print(f"smartgrid analytics rebuild: nothing changed: {error}", file=sys.stderr)
        return 1
    counts = Counter(level for level, _ in rebuilt.entities)
    print(f"rebuilt {start.isoformat()} to {end.isoformat()} from {rebuilt.readings} meter readings: "
          f"{counts['meter']} meters, {counts['feeder']} feeders, {counts['region']} regions")
    return 0


async def rebuild(settings: Settings, start: datetime, end: datetime) -> Rebuilt:
    """Rebuild [start, end) in the analytics database (the environment's, else the running platform's) from
    the readings API's meter readings, and retire the cached answers of what changed."""
    dsn, redis_url, readings_url = settings.domain_dsns.get("analytics"), settings.redis_url, settings.readings_url
    if dsn is None or readings_url is None:
        state = PlatformState.load(settings.state_dir)
        dsn, redis_url = dsn or state.dsns["analytics"], redis_url or state.endpoints.get("redis")
        readings_url = readings_url or state.endpoints["readings"]
    downstream = Downstreams.from_settings(settings).get("readings", is_transient)
    catalogue = Catalogue.load(settings.schemas_dir / "events", max_future_seconds=settings.max_future_seconds)
    fetched = Counter[str]()
    aggregator = Aggregator(Database(dsn, max_size=1))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as session:
            client = ReadingsClient(readings_url, session, downstream=downstream, token=cli_token_if_any(settings))
            entities = await aggregator.rebuild(start, end, _points(client, catalogue, start, end, fetched))
    finally:
        await aggregator.close()
    if redis_url is not None and entities:
        cache = AnswerCache(redis.connect(redis_url, cluster=settings.redis_cluster), redis.Keys(settings.redis_prefix))
        try:
            await cache.touched(entities)
        finally:
            await cache.close()
    return Rebuilt(fetched["readings"], entities)


async def _points(client: ReadingsClient, catalogue: Catalogue, start: datetime, end: datetime,
                  fetched: Counter[str]) -> AsyncIterator[list[Point]]:
    """The register points of each page of the range's meter readings (checked against the catalogue)."""
    async for page in client.pages("meters", start, end):
        fetched["readings"] += len(page)
        yield distinct_points(catalogue.validate(METER_READING, reading) for reading in page)


def _time(text: str) -> datetime:
    try:
        value = time_param({"time": text}, "time")
    except BadParameter as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    assert value is not None
    return value


def _floor(at: datetime) -> datetime:
    return datetime.fromtimestamp(at.timestamp() // DAY.total_seconds() * DAY.total_seconds(), UTC)


def _ceil(at: datetime) -> datetime:
    floor = _floor(at)
    return floor if floor == at else floor + DAY
