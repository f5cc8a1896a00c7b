"""The demo's closing report: what was sent, what the platform made of it, how long it took, where to look."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from local.demo.observe import Expected, Observed
from local.demo.options import DemoOptions, Period
from local.demo.senders import METER_TOPIC
from local.demo.tally import Tally, percentile
from shared.config import Settings

WIDTH = 34


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds of each phase of a run."""

    platform_s: float
    sending_s: float
    settling_s: float
    target_s: float

    @property
    def total_s(self) -> float:
        """Start of the platform to the end of settling."""
        return self.platform_s + self.sending_s + self.settling_s


@dataclass(frozen=True)
class Report:
    """Everything the summary shows."""

    options: DemoOptions
    period: Period
    feeders: int
    tally: Tally
    expected: Expected
    observed: Observed
    settled: bool
    stored_before: tuple[int, int]
    timings: Timings
    endpoints: dict[str, str]
    dsn: str
    broker_topic: str
    state_dir: Path

    @property
    def consistent(self) -> bool:
        """True when processing settled on exactly what was expected and nothing failed or was let through."""
        tally = self.tally
        return (self.settled and not tally.http_failed and not tally.kafka_failed
                and not tally.malformed_accepted and tally.http_rejected.total() == tally.malformed_sent.total())


def format_summary(report: Report) -> str:
    """The summary as text, one `label  number` line per figure."""
    options, period, tally, expected, observed = (report.options, report.period, report.tally, report.expected,
                                                  report.observed)
    lines = [
        (f"smartgrid demo: {options.sensors:,} sensors on {report.feeders} feeders, {options.meters:,} meters "
         f"behind {options.gateways} gateways, seed {options.seed}"),
        (f"simulated {period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC: {period.count} intervals "
         f"of {options.interval_minutes} min"),
        "",
        "sent over HTTP to ingest",
        _line("requests", tally.http_requests),
        _line("events", tally.http_events, f"{tally.malformed_sent.total():,} of them malformed on purpose"),
        _line("accepted", tally.http_accepted, "sensor readings"),
        _line("rejected", tally.http_rejected.total(), "400, by reason:"),
        *_breakdown(tally.http_rejected),
        _line("failed", tally.http_failed.total(), _inline(tally.http_failed)),
        _latency("answer time", tally.http_latency_s),
        f"produced to Kafka topic {METER_TOPIC}",
        _line("batches", tally.kafka_batches.total(),
              f"{tally.kafka_batches['avro']:,} Avro (Confluent wire format), {tally.kafka_batches['json']:,} JSON"),
        _line("meter readings", tally.meter_readings_produced),
        _line("malformed records", tally.malformed_records.total(), _inline(tally.malformed_records)),
        _line("failed", tally.kafka_failed),
        _latency("acknowledgement time", tally.kafka_latency_s),
        "stored in database smartgrid by this run",
        _line("sensor_readings rows", observed.sensor_rows, f"expected {expected.sensor_rows:,}"),
        _line("meter_readings rows", observed.meter_rows, f"expected {expected.meter_rows:,}"),
    ]
    if any(report.stored_before):
        lines.append(f"  (already stored by an earlier run, so not again: {report.stored_before[0]:,} sensor and "
                     f"{report.stored_before[1]:,} meter readings of this fleet at these times)")
    lines += [
        f"alerts raised (com.smartgrid.alert.raised on {report.broker_topic}), distinct, by rule",
        *(_line(rule, observed.alerts[rule], f"expected {expected.alerts[rule]:,}")
          for rule in sorted(set(observed.alerts) | set(expected.alerts))),
        _line("alerts", observed.alerts.total(), f"expected {expected.alerts.total():,}"),
        "dead letters (table dead_letters, this run)",
        _line("dead-lettered", observed.dead_letters.total(), f"expected {expected.dead_letters:,}, by reason:"),
        *_breakdown(observed.dead_letters),
        "",
        *_timing_lines(report),
        _line("result", None, _verdict(report)),
        "",
        *_where_to_look(report),
    ]
    return "\n".join(lines)


def _timing_lines(report: Report) -> list[str]:
    timings = report.timings
    busy_s = timings.sending_s + timings.settling_s
    return [
        (f"  {'wall time':<{WIDTH - 2}}{timings.total_s:>10.1f} s  (platform start {timings.platform_s:.1f} s, "
         f"sending {timings.sending_s:.1f} s for a target of {timings.target_s:g} s, "
         f"settling {timings.settling_s:.1f} s)"),
        _line("readings/s", round(report.tally.readings_accepted / busy_s) if busy_s else 0,
              "accepted and processed, from the first send until settled"),
    ]


def _verdict(report: Report) -> str:
    if report.consistent:
        return ("consistent: every accepted reading stored once, every expected alert raised, "
                "every malformed message refused")
    problems = []
    if not report.settled:
        problems.append("processing did not reach the expected counts before it stopped changing")
    if report.tally.malformed_accepted:
        problems.append(f"{report.tally.malformed_accepted} malformed request(s) accepted")
    if report.tally.http_failed or report.tally.kafka_failed:
        problems.append("some sends failed")
    if report.tally.http_rejected.total() != report.tally.malformed_sent.total():
        problems.append("rejections differ from the malformed requests sent")
    return "INCONSISTENT: " + "; ".join(problems)


def _where_to_look(report: Report) -> list[str]:
    start, end = f"{report.period.start:%Y-%m-%d %H:%M}+00", f"{report.period.end:%Y-%m-%d %H:%M}+00"
    psql = f"psql {shlex.quote(report.dsn)} -c"
    logs = report.state_dir / "logs"
    sensors = (f"SELECT date_trunc('hour', ts) AS hour, round(avg(voltage_l1_v)::numeric, 1) AS volts, "
               f"round(avg(current_l1_a)::numeric, 1) AS amps FROM sensor_readings "
               f"WHERE ts >= '{start}' AND ts < '{end}' GROUP BY 1 ORDER BY 1")
    meters = (f"SELECT date_trunc('hour', ts) AS hour, round(sum(import_kw)::numeric) AS import_kw, "
              f"round(sum(export_kw)::numeric) AS export_kw FROM meter_readings "
              f"WHERE ts >= '{start}' AND ts < '{end}' GROUP BY 1 ORDER BY 1")
    custom = report.state_dir != Settings().state_dir.resolve()
    state = f"SMARTGRID_STATE_DIR={shlex.quote(str(report.state_dir))} " if custom else ""
    lines = ["look at them" + ("" if report.options.keep_running else
                               " (the platform stops now; the rows stay in PostgreSQL: run `smartgrid up`, "
                               "or the demo with --keep-running, to query them through it)"),
             f"  {psql} {_double_quoted(sensors)}",
             f"  {psql} {_double_quoted(meters)}",
             f"  {state}smartgrid dlq list",
             f"  logs: {logs}/demo.log (platform), {logs}/functions/<function>.log",
             *(f"  {name:<12}{url}" for name, url in report.endpoints.items())]
    return lines


def _double_quoted(sql: str) -> str:
    """SQL in double quotes for a shell, so its own single quotes stay readable."""
    if any(character in sql for character in '"$`\\!'):
        return shlex.quote(sql)
    return f'"{sql}"'


def _line(label: str, value: int | None, note: str = "") -> str:
    number = "" if value is None else f"{value:,}"
    return f"  {label:<{WIDTH - 2}}{number:>10}" + (f"  {note}" if note else "")


def _latency(label: str, values: list[float]) -> str:
    figures = ", ".join(f"{name} {percentile(values, share) * 1000:,.0f} ms"
                        for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)))
    return f"  {label:<{WIDTH - 2}}{'':>10}  {figures}"


def _breakdown(counts: Counter[str]) -> list[str]:
    return [f"    {reason:<{WIDTH + 4}}{count:>6,}" for reason, count in sorted(counts.items())]


def _inline(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in sorted(counts.items()))
