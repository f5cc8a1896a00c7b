"""Aggregates on the real PostgreSQL against a brute-force recomputation from the same readings."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.analytics.aggregator import BUCKETS, Aggregator
from shared.analytics.points import Point, distinct_points
from shared.analytics.store import AggregateStore
from shared.stores.postgres import Database

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 20, 22, 50, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def readings(prefix: str, seed: int) -> list[dict[str, Any]]:
    """Meter readings of three meters on two feeders: irregular intervals, a two-hour gap, a counter reset."""
    rng = random.Random(seed)
    made = []
    for index, feeder in enumerate(("A", "A", "B")):
        at, register = START + timedelta(minutes=rng.randrange(15)), 1000.0 * index
        while at < START + timedelta(hours=30):
            registers: dict[str, float] = {"1.8.0": round(register, 3)}
            if rng.random() < 0.9:
                registers["1.7.0"] = round(rng.uniform(0, 8), 3)
            if rng.random() < 0.8:
                registers.update({"32.7.0": rng.uniform(220, 240), "52.7.0": rng.uniform(220, 240)})
            if rng.random() < 0.7:
                registers["14.7.0"] = rng.uniform(49.9, 50.1)
            made.append({"meter_id": f"{prefix}m{index}", "site_id": "s", "feeder_id": f"{prefix}{feeder}",
                         "region": f"{prefix}north", "timestamp": at, "registers": registers})
            at += timedelta(minutes=rng.choice((5, 10, 15, 20)) if rng.random() > 0.01 else 120)
            register = rng.uniform(0, 3) if rng.random() < 0.005 else register + rng.uniform(0, 2)
    return made


def quarter(at: datetime) -> datetime:
    return at - (at - EPOCH) % BUCKETS["15min"]


def start_of(at: datetime, bucket: str) -> datetime:
    return at - (at - EPOCH) % BUCKETS[bucket]


def expected(points: list[Point]) -> dict[tuple[str, str, str], dict[datetime, dict[str, Any]]]:
    """(level, entity, bucket) -> bucket start -> the API's answer, recomputed from scratch."""
    quarters: dict[tuple[str, datetime], dict[str, Any]] = {}
    by_meter: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        by_meter[p.meter_id].append(p)
    for meter, series in by_meter.items():
        series.sort(key=lambda p: p.ts)
        for i, p in enumerate(series):
            delta = 0.0 if i == 0 else (p.import_kwh - series[i - 1].import_kwh
                                        if p.import_kwh >= series[i - 1].import_kwh else p.import_kwh)
            q = quarters.setdefault((meter, quarter(p.ts)), {"energy": 0.0, "n": 0, "power": [], "volt": [],
                                                                  "hz": []})
            q["energy"] += delta
            q["n"] += 1
            q["feeder"], q["region"] = p.feeder_id, p.region
            q["power"] += [p.power_kw] if p.power_kw is not None else []
            q["volt"] += [p.voltage_v] if p.voltage_v is not None else []
            q["hz"] += [p.frequency_hz] if p.frequency_hz is not None else []
    level_quarters: dict[tuple[str, str], dict[datetime, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for (meter, start), q in quarters.items():
        for level, entity in (("meter", meter), ("feeder", q["feeder"]), ("region", q["region"])):
            level_quarters[(level, entity)][start].append(q)
    answers: dict[tuple[str, str, str], dict[datetime, dict[str, Any]]] = defaultdict(dict)
    for (level, entity), by_quarter in level_quarters.items():
        for bucket, width in BUCKETS.items():
            grouped: dict[datetime, list[tuple[datetime, list[dict[str, Any]]]]] = defaultdict(list)
            for start, items in by_quarter.items():
                grouped[start_of(start, bucket)].append((start, items))
            for start, members in grouped.items():
                answers[(level, entity, bucket)][start] = answer(start, width, members)
    return answers


def answer(start: datetime, width: timedelta, members: list[tuple[datetime, list[dict[str, Any]]]]) -> dict[str, Any]:
    energy = sum(q["energy"] for _, items in members for q in items)
    demand = sorted(((sum(q["energy"] for q in items) * 4, at) for at, items in members), key=lambda d: (-d[0], d[1]))
    power = [v for _, items in members for q in items for v in q["power"]]
    volt = [v for _, items in members for q in items for v in q["volt"]]
    hz = [v for _, items in members for q in items for v in q["hz"]]
    peak, peak_at = demand[0]
    return {
        "bucket_start": start, "bucket_end": start + width, "energy_kwh": energy,
        "readings": sum(q["n"] for _, items in members for q in items),
        "power_mean_kw": sum(power) / len(power) if power else None, "power_min_kw": min(power, default=None),
        "power_max_kw": max(power, default=None), "peak_demand_kw": peak, "peak_at": peak_at,
        "load_factor": energy / (width.total_seconds() / 3600) / peak if peak > 0 else None,
        "voltage_mean_v": sum(volt) / len(volt) if volt else None,
        "frequency_mean_hz": sum(hz) / len(hz) if hz else None,
    }


async def check(store: AggregateStore, points: list[Point]) -> None:
    answers = expected(points)
    assert {level for level, _, _ in answers} == {"meter", "feeder", "region"}
    for (level, entity, bucket), by_start in answers.items():
        rows = await store.buckets(level, entity, bucket, START - timedelta(days=1), START + timedelta(days=3))
        assert [row["bucket_start"] for row in rows] == sorted(by_start), (level, entity, bucket)
        for row in rows:
            want = by_start[row["bucket_start"]]
            assert row.keys() == want.keys()
            for key, value in want.items():
                close = isinstance(value, float) and value == pytest.approx(row[key], rel=1e-9, abs=1e-9)
                assert close or row[key] == value, (level, entity, bucket, key, row[key], value)


async def test_shuffled_late_and_duplicate_readings_match_a_recomputation(database: Database) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = readings(prefix, seed=11)
    assert any(b["registers"]["1.8.0"] < a["registers"]["1.8.0"] for a, b in itertools.pairwise(sent)
               if a["meter_id"] == b["meter_id"]), "expected a counter reset in the data"
    shuffled = sent + random.Random(3).sample(sent, len(sent) // 5)  # a fifth sent twice
    random.Random(5).shuffle(shuffled)
    aggregator = Aggregator(database)
    batches = [shuffled[i:i + 37] for i in range(0, len(shuffled), 37)]
    for group in range(0, len(batches), 4):  # four batches at a time, racing for the same aggregates
        await asyncio.gather(*(aggregator.add(distinct_points(batch)) for batch in batches[group:group + 4]))
    await check(AggregateStore(database), distinct_points(sent))


async def test_in_order_batches_then_everything_again_changes_nothing(database: Database) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = sorted(readings(prefix, seed=29), key=lambda r: r["timestamp"])
    aggregator = Aggregator(database)
    for i in range(0, len(sent), 1000):
        await aggregator.add(distinct_points(sent[i:i + 1000]))
    assert await aggregator.add(distinct_points(sent)) == {"points": len(sent), "new": 0, "quarters": 0}
    await check(AggregateStore(database), distinct_points(sent))


async def test_a_late_reading_splits_the_delta_of_its_neighbours(database: Database) -> None:
    meter = f"m-{uuid.uuid4().hex[:6]}"

    def reading(minutes: int, kwh: float) -> dict[str, Any]:
        return {"meter_id": meter, "site_id": "s", "timestamp": START + timedelta(minutes=minutes),
                "registers": {"1.8.0": kwh}}

    aggregator, store = Aggregator(database), AggregateStore(database)
    await aggregator.add(distinct_points([reading(10, 100.0), reading(70, 110.0)]))
    hours = await store.buckets("meter", meter, "hour", START, START + timedelta(hours=3))
    assert [h["energy_kwh"] for h in hours] == [0.0, 10.0]  # the whole gap lands with the later reading
    assert await aggregator.add(distinct_points([reading(40, 104.0)])) == {"points": 1, "new": 1, "quarters": 2}
    hours = await store.buckets("meter", meter, "hour", START, START + timedelta(hours=3))
    assert [h["energy_kwh"] for h in hours] == [4.0, 6.0]


async def test_readings_in_time_order_are_added_without_recomputing(database: Database) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = sorted(readings(prefix, seed=41), key=lambda r: r["timestamp"])
    aggregator = Aggregator(database)
    for i in range(0, len(sent), 50):  # several points of each meter per batch, its first ones in the first
        batch = distinct_points(sent[i:i + 50])
        assert await aggregator.add(batch) == {"points": len(batch), "new": len(batch), "quarters": 0}
    await check(AggregateStore(database), distinct_points(sent))


async def test_in_order_batches_racing_late_readings_of_the_same_meters_match_a_recomputation(
        database: Database) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = sorted(readings(prefix, seed=53), key=lambda r: r["timestamp"])
    held = set(random.Random(7).sample(range(len(sent)), len(sent) // 5))
    in_order = [[r for j, r in enumerate(sent[i:i + 40], i) if j not in held] for i in range(0, len(sent), 40)]
    late = [[sent[j] for j in sorted(held) if i - 80 <= j < i - 40] + sent[max(i - 45, 0):max(i - 40, 0)]
            for i in range(0, len(sent), 40)]  # the points held back two batches before, and duplicates
    aggregator, recomputed = Aggregator(database), 0
    for batch, behind in zip(in_order, late, strict=True):  # each in-order batch races late points of its meters
        ahead, counts = await asyncio.gather(aggregator.add(distinct_points(batch)),
                                             aggregator.add(distinct_points(behind)))
        assert ahead["quarters"] == 0
        recomputed += counts["quarters"]
    assert recomputed > 0
    remaining = [sent[j] for j in sorted(held) if j >= len(sent) - 80]
    await aggregator.add(distinct_points(remaining))
    await check(AggregateStore(database), distinct_points(sent))


async def test_a_meter_moving_feeder_within_a_quarter_moves_the_quarter(database: Database) -> None:
    prefix = uuid.uuid4().hex[:6]
    sent = sorted(readings(prefix, seed=61), key=lambda r: r["timestamp"])
    series = [r for r in sent if r["meter_id"] == f"{prefix}m0"]
    move = next(b for a, b in itertools.pairwise(series[len(series) // 2:])
                if quarter(a["timestamp"]) == quarter(b["timestamp"]))
    for reading in series[series.index(move):]:
        reading["feeder_id"] = f"{prefix}B"
    cut = sent.index(move)
    aggregator = Aggregator(database)
    for i in range(0, cut, 40):
        await aggregator.add(distinct_points(sent[i:min(i + 40, cut)]))
    assert (await aggregator.add(distinct_points(sent[cut:cut + 40])))["quarters"] == 1  # not additive
    await aggregator.add(distinct_points(sent[cut + 40:]))
    await check(AggregateStore(database), distinct_points(sent))
