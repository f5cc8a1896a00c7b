"""`smartgrid analytics rebuild`: recompute the aggregates of a time range from the stored register points."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta

from local import aio
from local.state import PlatformState
from shared.analytics.aggregator import Aggregator
from shared.analytics.cache import AnswerCache
from shared.config import Settings
from shared.params import BadParameter, time_param
from shared.stores import redis
from shared.stores.postgres import Database

DAY = timedelta(days=1)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `analytics rebuild` to the `smartgrid` commands."""
    analytics = commands.add_parser("analytics", help="aggregates of meter readings")
    analytics_commands = analytics.add_subparsers(required=True, metavar="COMMAND")
    rebuild = analytics_commands.add_parser(
        "rebuild", help="recompute the aggregates of whole UTC days from the register points the analytics "
                        "database keeps (after a fix to the aggregation, or aggregates lost)")
    rebuild.add_argument("--from", dest="start", required=True, type=_time, metavar="T",
                         help="RFC 3339 time with offset; rounded down to its UTC day")
    rebuild.add_argument("--to", dest="end", required=True, type=_time, metavar="T",
                         help="RFC 3339 time with offset; rounded up to a UTC day")
    rebuild.set_defaults(command=_rebuild)


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    start, end = _floor(args.start), _ceil(args.end)
    if start >= end:
        raise SystemExit(f"--from: expected a time before --to ({args.end.isoformat()}), found {args.start.isoformat()}")
    entities = aio.run(rebuild(settings, start, end))
    counts = Counter(level for level, _ in entities)
    print(f"rebuilt {start.isoformat()} to {end.isoformat()}: {counts['meter']} meters, "
          f"{counts['feeder']} feeders, {counts['region']} regions")
    return 0


async def rebuild(settings: Settings, start: datetime, end: datetime) -> set[tuple[str, str]]:
    """Rebuild [start, end) in the analytics database (the environment's, else the running platform's)
    and retire the cached answers of what changed; answers the rebuilt entities."""
    dsn, redis_url = settings.domain_dsns.get("analytics"), settings.redis_url
    if dsn is None:
        state = PlatformState.load(settings.state_dir)
        dsn, redis_url = state.dsns["analytics"], redis_url or state.endpoints.get("redis")
    aggregator = Aggregator(Database(dsn, max_size=1))
    try:
        entities = await aggregator.rebuild(start, end)
    finally:
        await aggregator.close()
    if redis_url is not None and entities:
        cache = AnswerCache(redis.connect(redis_url), redis.Keys(settings.redis_prefix))
        try:
            await cache.touched(entities)
        finally:
            await cache.close()
    return entities


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
