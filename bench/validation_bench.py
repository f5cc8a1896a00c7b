"""Benchmark of the event catalogue's JSON validation beside fastavro's own `validate`.

    .venv/bin/python bench/validation_bench.py [--repeat R] [--seconds S]

For a meter reading (timestamp as RFC 3339 text, and as epoch milliseconds) and a batch of
1,000 readings: datums/s (and readings/s) of `Catalogue.validate`, which checks, names the
failing field and normalises, and of `fastavro.validation.validate` on the same datum
(fastavro takes only the epoch-milliseconds form, and checks no minimum, pattern or range).
Each figure is the best of R runs of about S seconds on one core. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastavro.validation import validate as fastavro_validate

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.validation.catalogue import Catalogue  # noqa: E402

METER = "com.smartgrid.meter.reading"
BATCH = "com.smartgrid.meter.readings.batch"


def reading(index: int, timestamp: Any) -> dict[str, Any]:
    """A meter reading as a head-end sends it: ten OBIS registers."""
    return {
        "meter_id": f"MTR-{index:06d}",
        "site_id": f"SITE-{index // 3:05d}",
        "feeder_id": f"F-{index % 40}",
        "region": "north",
        "timestamp": timestamp,
        "registers": {
            "1.8.0": 12345.678 + index,
            "2.8.0": 12.5,
            "1.7.0": 1.25,
            "2.7.0": 0.0,
            "32.7.0": 230.1,
            "52.7.0": 229.8,
            "72.7.0": 231.0,
            "31.7.0": 5.1,
            "51.7.0": 4.9,
            "71.7.0": 5.0,
        },
    }


def rate(function: Callable[[], object], repeat: int, seconds: float) -> float:
    """Best calls/s of `repeat` runs of about `seconds` each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10:
            break
        calls *= 2
    calls = max(1, int(calls * seconds / elapsed))
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = max(best, calls / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    catalogue = Catalogue.load(REPO / "schemas" / "events")
    meter, batch = catalogue.latest(METER), catalogue.latest(BATCH)
    millis = 1714564800000
    text_reading = reading(1, "2024-05-01T12:00:00.250Z")
    millis_reading = reading(1, millis)
    text_batch = {"gateway_id": "GW-1", "readings": [reading(i, "2024-05-01T12:00:00Z") for i in range(1000)]}
    millis_batch = {"gateway_id": "GW-1", "readings": [reading(i, millis + i) for i in range(1000)]}
    for datum, schema in ((millis_reading, meter), (millis_batch, batch)):
        catalogue.validate(schema.type, datum)
        fastavro_validate(datum, schema.parsed)

    rows = [
        ("meter reading, RFC 3339 text", 1, lambda: meter.validate(text_reading), None),
        (
            "meter reading, epoch millis",
            1,
            lambda: meter.validate(millis_reading),
            lambda: fastavro_validate(millis_reading, meter.parsed),
        ),
        ("batch of 1,000, RFC 3339 text", 1000, lambda: batch.validate(text_batch), None),
        (
            "batch of 1,000, epoch millis",
            1000,
            lambda: batch.validate(millis_batch),
            lambda: fastavro_validate(millis_batch, batch.parsed),
        ),
    ]
    print(f"best of {args.repeat} x {args.seconds:g} s, one core\n")
    print(f"{'datum':32} {'catalogue datums/s':>19} {'readings/s':>11} {'fastavro datums/s':>18} {'readings/s':>11}")
    for name, readings, ours, theirs in rows:
        our_rate = rate(ours, args.repeat, args.seconds)
        line = f"{name:32} {our_rate:>19,.0f} {our_rate * readings:>11,.0f}"
        if theirs is not None:
            their_rate = rate(theirs, args.repeat, args.seconds)
            line += f" {their_rate:>18,.0f} {their_rate * readings:>11,.0f}"
        print(line)


if __name__ == "__main__":
    main()
