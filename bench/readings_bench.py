"""Readings stored end to end: gateway batches produced to Kafka, PostgreSQL rows out.

Runs `smartgrid up` (Kafka and PostgreSQL reused from SMARTGRID_KAFKA_BOOTSTRAP /
SMARTGRID_PG_DSN when set, else started), then:

1. raw limits of the same rows in the same run: binary COPY into an unpartitioned table,
   and the store's own idempotent write (COPY to staging + INSERT ... ON CONFLICT) without HTTP;
2. throughput: N Avro batches (Confluent wire format) of `--batch-size` meter readings
   produced to `smartgrid-meter-readings` as fast as possible; readings/s until every row is
   committed (KafkaSource -> process -> validation, rules, COPY);
3. latency at a fixed offered load: batches sent on a schedule, each batch's commit seen by
   a poller every 5 ms; p50/p99 from produce to committed rows.

Prints figures only. `.venv/bin/python bench/readings_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from confluent_kafka import Producer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.servers.databases import drop  # noqa: E402
from local.servers.kafka import kafka_server  # noqa: E402
from local.servers.postgres import postgres_server  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.readings.rows import meter_row  # noqa: E402
from shared.readings.store import METER_READINGS, ReadingStore, prepare_connection  # noqa: E402
from shared.stores.postgres import Database  # noqa: E402
from shared.validation import wire  # noqa: E402
from shared.validation.catalogue import Catalogue  # noqa: E402

TOPIC = "smartgrid-meter-readings"
BATCH_TYPE = "com.smartgrid.meter.readings.batch"


def batch_datum(site: str, size: int, day: datetime) -> dict:
    """A gateway batch of `size` in-band meter readings of one site, 15 minutes apart per meter."""
    readings = []
    for i in range(size):
        meter, slot = divmod(i, 96)
        readings.append({
            "meter_id": f"{site}-m{meter}", "site_id": site, "feeder_id": f"F{meter % 20}", "region": "north",
            "timestamp": day + timedelta(minutes=15 * slot),
            "registers": {"1.8.0": 1000.0 + i * 0.1, "2.8.0": 0.0, "1.7.0": 0.4, "2.7.0": 0.0,
                          "32.7.0": 229.0 + (i % 7), "52.7.0": 230.0, "72.7.0": 231.0,
                          "31.7.0": 1.5, "51.7.0": 1.4, "71.7.0": 1.6},
        })
    return {"gateway_id": site, "readings": readings}


@contextmanager
def platform(settings: Settings, bootstrap: str, admin_dsn: str, prefix: str) -> Iterator[dict[str, str]]:
    """A running `smartgrid up` on these servers; yields its endpoints."""
    state = Path(tempfile.mkdtemp(prefix="smartgrid-bench-"))
    env = {**os.environ, "SMARTGRID_KAFKA_BOOTSTRAP": bootstrap, "SMARTGRID_PG_DSN": admin_dsn,
           "SMARTGRID_DB_PREFIX": prefix, "SMARTGRID_STATE_DIR": str(state)}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("smartgrid")), "--log-level", "warning", "up", "--idle-seconds", "600"],
        stdout=subprocess.PIPE, stderr=open(state / "up.log", "wb"), env=env,
    )
    endpoints: dict[str, str] = {}
    assert process.stdout is not None
    while "process" not in endpoints:
        line = process.stdout.readline().decode()
        if not line:
            raise SystemExit(f"smartgrid up ended early; see {state / 'up.log'}")
        name, _, url = line.strip().partition(" ")
        endpoints[name] = url
    try:
        yield endpoints
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def raw_copy_rate(dsn: str, rows: list[tuple]) -> float:
    """Rows/s of a binary COPY of `rows` into an unpartitioned scratch table."""
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE raw_copy (LIKE meter_readings INCLUDING DEFAULTS)")
        columns = ", ".join(METER_READINGS.columns)
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY raw_copy ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(METER_READINGS.types))
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - began)


async def store_rate(dsn: str, rows: list[tuple], batch_size: int) -> float:
    """Rows/s of the store's idempotent write, in batches, without HTTP or Kafka."""
    database = Database(dsn, configure=prepare_connection)
    store = ReadingStore(database)
    try:
        await store.write(METER_READINGS, rows[:batch_size])  # partitions and connection warmed up
        began = time.perf_counter()
        for start in range(batch_size, len(rows), batch_size):
            await store.write(METER_READINGS, rows[start:start + batch_size])
        return (len(rows) - batch_size) / (time.perf_counter() - began)
    finally:
        await database.close()


def count_rows(dsn: str, sites: list[str]) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(
            "SELECT site_id, count(*) FROM meter_readings WHERE site_id = ANY(%s) GROUP BY site_id", (sites,)
        ).fetchall())


def throughput(producer: Producer, dsn: str, payloads: dict[str, bytes], batch_size: int) -> tuple[float, float]:
    """(readings/s end to end, produce seconds) for all payloads sent back to back."""
    began = time.perf_counter()
    for site, payload in payloads.items():
        producer.produce(TOPIC, key=site.encode(), value=payload)
        producer.poll(0)
    producer.flush(30)
    produced = time.perf_counter() - began
    expected = len(payloads) * batch_size
    sites = list(payloads)
    deadline = time.monotonic() + 600
    while sum(count_rows(dsn, sites).values()) < expected:
        if time.monotonic() > deadline:
            raise SystemExit("rows did not all arrive within 600 s")
        time.sleep(0.05)
    return expected / (time.perf_counter() - began), produced


def latency(producer: Producer, dsn: str, payloads: dict[str, bytes], batch_size: int, rate: float) -> list[float]:
    """Milliseconds from produce to committed rows, batches sent at `rate` per second."""
    sent: dict[str, float] = {}
    committed: dict[str, float] = {}
    done = threading.Event()

    def poll_commits() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not done.is_set():
                pending = [site for site in sent if site not in committed]
                if pending:
                    now = time.perf_counter()
                    for site, rows in conn.execute(
                        "SELECT site_id, count(*) FROM meter_readings WHERE site_id = ANY(%s) GROUP BY site_id",
                        (pending,),
                    ).fetchall():
                        if rows == batch_size:
                            committed[site] = now
                time.sleep(0.005)

    poller = threading.Thread(target=poll_commits, daemon=True)
    poller.start()
    began = time.perf_counter()
    for index, (site, payload) in enumerate(payloads.items()):
        time.sleep(max(0.0, began + index / rate - time.perf_counter()))
        sent[site] = time.perf_counter()
        producer.produce(TOPIC, key=site.encode(), value=payload)
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 120
    while len(committed) < len(payloads) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    poller.join()
    return sorted((committed[s] - sent[s]) * 1000 for s in committed)


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches for the throughput run")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=20.0, help="batches/s offered in the latency run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--format", choices=["avro", "json"], default="avro",
                        help="gateway records: Avro (Confluent wire format) or JSON")
    args = parser.parse_args()

    settings = Settings.from_env()
    prefix = f"bench{os.getpid()}_"
    catalogue = Catalogue.load()
    schema = catalogue.latest(BATCH_TYPE)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    latency_batches = int(args.latency_rate * args.latency_seconds)
    print(f"encoding {args.batches + latency_batches + 20} batches of {args.batch_size} readings ...", flush=True)
    datums = {f"s{i:05d}-{prefix}": schema.validate(batch_datum(f"s{i:05d}-{prefix}", args.batch_size, day))
              for i in range(args.batches + latency_batches + 20)}
    encode = (lambda datum: wire.encode(schema, datum)) if args.format == "avro" else orjson.dumps
    payloads = {site: encode(datum) for site, datum in datums.items()}
    sites = list(payloads)
    warmup = {s: payloads[s] for s in sites[:20]}
    bulk = {s: payloads[s] for s in sites[20:20 + args.batches]}
    paced = {s: payloads[s] for s in sites[20 + args.batches:]}
    raw_rows = [meter_row(r, "raw") for site in list(bulk)[:100] for r in datums[site]["readings"]]
    store_rows = [meter_row(r, "store") for site in list(bulk)[:100] for r in datums[site]["readings"]]

    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartgrid-bench-")))
        bootstrap = stack.enter_context(kafka_server(settings.kafka_bootstrap, state))
        admin_dsn = stack.enter_context(postgres_server(settings.pg_dsn, state))
        stack.callback(drop, admin_dsn, prefix)
        endpoints = stack.enter_context(platform(settings, bootstrap, admin_dsn, prefix))
        dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=f"{prefix}smartgrid")
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 10_000_000})

        copy_rate = raw_copy_rate(dsn, raw_rows)
        idempotent_rate = asyncio.run(store_rate(dsn, store_rows, args.batch_size))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE meter_readings")
        throughput(producer, dsn, warmup, args.batch_size)  # cold start of `process`, caches warm
        end_to_end, produce_s = throughput(producer, dsn, bulk, args.batch_size)
        waits = latency(producer, dsn, paced, args.batch_size, args.latency_rate)

    offered = args.latency_rate * args.batch_size
    print()
    print(f"platform: {endpoints['broker']} (Kafka {bootstrap}); gateway records in {args.format}, "
          f"process workers: {os.environ.get('WORKERS', '1')}")
    print(f"{'figure':58} {'value':>14}")
    print(f"{'raw binary COPY of the same rows (unpartitioned)':58} {copy_rate:>11,.0f} /s")
    print(f"{'store write: COPY + INSERT ON CONFLICT, batches, no HTTP':58} {idempotent_rate:>11,.0f} /s")
    print(f"{'end to end: Kafka -> KafkaSource -> process -> rows':58} {end_to_end:>11,.0f} /s")
    print(f"{'  (of which producing took)':58} {produce_s:>12.2f} s")
    print(f"{'  ratio to raw COPY':58} {end_to_end / copy_rate:>13.1%}")
    print(f"{'  ratio to the store write alone':58} {end_to_end / idempotent_rate:>13.1%}")
    if waits:
        print(f"{f'latency produce -> committed rows at {offered:,.0f} readings/s':58} "
              f"p50 {percentile(waits, 0.5):.0f} ms, p99 {percentile(waits, 0.99):.0f} ms, "
              f"max {waits[-1]:.0f} ms ({len(waits)}/{len(paced)} batches)")
    print(f"{'goal':58} {'>= 100,000 /s':>14}")


if __name__ == "__main__":
    main()
