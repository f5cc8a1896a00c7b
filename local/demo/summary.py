"""The demo's closing report: what was sent, what the platform made of it, how long it took, where to look."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from local.demo.malformed import REFUSAL_STATUS
from local.demo.observe import Expected, Observed
from local.demo.options import DemoOptions, Period
from local.demo.registration import Registration
from local.demo.senders import METER_TOPIC
from local.demo.tally import Tally, percentile
from local.servers.smtp import MAIL_FOLDER
from local.servers.webhook import WEBHOOKS_FILE
from shared.config import Settings

WIDTH = 34
STATUSES = ("open", "acknowledged", "cleared")


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds of each phase of a run."""

    platform_s: float
    registering_s: float
    sending_s: float
    settling_s: float
    target_s: float

    @property
    def total_s(self) -> float:
        """Start of the platform to the end of settling."""
        return self.platform_s + self.registering_s + self.sending_s + self.settling_s


@dataclass(frozen=True)
class Report:
    """Everything the summary shows."""

    options: DemoOptions
    period: Period
    feeders: int
    registration: Registration
    tokens_taken: int
    tally: Tally
    expected: Expected
    observed: Observed
    settled: bool
    alerts_before: int
    record_consumers: int
    silenced: frozenset[str]
    timings: Timings
    endpoints: dict[str, str]
    dsn: str
    state_dir: Path

    @property
    def consistent(self) -> bool:
        """True when processing settled on exactly what was expected, nothing failed or was let through, and
        `ingest` refused exactly the bad requests, each with its status."""
        tally = self.tally
        return (self.settled and not tally.http_failed and not tally.kafka_failed
                and not tally.malformed_accepted and not tally.refused_otherwise
                and tally.http_rejected.total() == tally.malformed_sent.total())


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
        *_device_lines(report),
        "sent over HTTP to ingest",
        _line("requests", tally.http_requests, "each one sensor's, with its token"),
        _line("events", tally.http_events, f"{_bad_sent(tally)} on purpose"),
        _line("accepted", tally.http_accepted, "sensor readings"),
        _line("rejected", tally.http_rejected.total(), "by status and reason:"),
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
    if tally.sensor_readings_stored_before or tally.meter_readings_stored_before:
        lines.append(f"  (already stored by an earlier run, so not again: {tally.sensor_readings_stored_before:,} "
                     f"sensor and {tally.meter_readings_stored_before:,} meter readings of those sent)")
    lines += [
        *_alert_lines(report),
        *_notification_lines(report),
        "dead letters (table dead_letters, this run)",
        _line("dead-lettered", observed.dead_letters.total(),
              f"expected {expected.dead_letters:,} (each malformed record from {report.record_consumers} "
              f"KafkaSource(s)), by reason:"),
        *_breakdown(observed.dead_letters),
        "",
        *_timing_lines(report),
        _line("result", None, _verdict(report)),
        "",
        *_where_to_look(report),
    ]
    return "\n".join(lines)


def _device_lines(report: Report) -> list[str]:
    """The fleet's devices registered by this run (and an earlier one), and the sensors' tokens taken."""
    registration = report.registration
    registered, already = registration.registered, registration.already
    lines = ["devices registered with the users service (/api/v1/devices)",
             _line("registered", registered.total(),
                   f"{_kinds(registered)} in {registration.calls:,} call(s)" if registered else "")]
    if already:
        lines.append(_line("already registered", already.total(),
                           f"{_kinds(already)} by an earlier run: left as they are, "
                           f"{registration.renewed:,} sensor(s) given a new secret"))
    lines.append(_line("sensor tokens", report.tokens_taken,
                       "client_credentials, one per sensor, renewed before they expire"))
    return lines


def _kinds(counts: Counter[str]) -> str:
    """`<n> sensors, <n> gateways, <n> meters behind them`."""
    names = (("sensor", "sensors"), ("gateway", "gateways"), ("meter", "meters behind them"))
    return ", ".join(f"{counts[kind]:,} {name}" for kind, name in names if counts[kind])


def _bad_sent(tally: Tally) -> str:
    """`<n> of them malformed (400) and <n> forbidden (403)`: the bad requests sent on purpose."""
    statuses = Counter(REFUSAL_STATUS[kind] for kind in tally.malformed_sent.elements())
    return f"{statuses[400]:,} of them malformed (400) and {statuses[403]:,} forbidden (403)"


def _alert_lines(report: Report) -> list[str]:
    """Distinct alerts raised by this run per rule, against those expected, with their status now."""
    expected, observed = report.expected, report.observed
    lines = ["alerts raised (table alerts, by this run), distinct, by rule"]
    for rule in sorted(set(observed.alerts) | set(expected.alerts)):
        if rule in expected.timed_rules:
            planned = len(report.silenced & observed.timed_devices)
            others = len(observed.timed_devices - report.silenced)
            note = (f"not compared (depends on timing): on {planned} of {len(report.silenced)} silenced devices, "
                    f"{others} other device(s)")
        else:
            note = f"expected {expected.alerts[rule]:,}"
        lines.append(_line(rule, observed.alerts[rule], f"{note}; {_statuses(observed, rule)}"))
    timed = ", ".join(sorted(expected.timed_rules))
    lines.append(_line("alerts", observed.alerts.total(),
                       f"expected {expected.alerts.total():,} besides {timed}; {_statuses(observed)}"))
    if report.alerts_before:
        lines.append(f"  (already raised by an earlier run, so not again: {report.alerts_before:,} alerts)")
    return lines


def _statuses(observed: Observed, rule: str | None = None) -> str:
    """`<n> open, <n> cleared`: the alerts' status now, of one rule or of all."""
    counts: Counter[str] = Counter()
    for (alert_rule, status), count in observed.alert_statuses.items():
        if rule is None or alert_rule == rule:
            counts[status] += count
    shown = [status for status in STATUSES if status != "acknowledged" or counts[status]]
    return ", ".join(f"{counts[status]:,} {status}" for status in shown)


def _notification_lines(report: Report) -> list[str]:
    """Notification attempts since the run began, by channel and status (when the platform records them)."""
    attempts = report.observed.notifications
    if attempts is None:
        return ["notifications: none recorded (no table notification_attempts in this database)"]
    lines = ["notifications (table notification_attempts, this run), by channel and status"]
    lines += [_line(f"{channel} {status}", count) for (channel, status), count in sorted(attempts.items())]
    note = "" if attempts or "notify" in report.endpoints else "no notify function in this platform"
    lines.append(_line("notifications", attempts.total(), note))
    return lines


def _timing_lines(report: Report) -> list[str]:
    timings = report.timings
    busy_s = timings.sending_s + timings.settling_s
    return [
        (f"  {'wall time':<{WIDTH - 2}}{timings.total_s:>10.1f} s  (platform start {timings.platform_s:.1f} s, "
         f"registering {timings.registering_s:.1f} s, "
         f"sending {timings.sending_s:.1f} s for a target of {timings.target_s:g} s, "
         f"settling {timings.settling_s:.1f} s)"),
        _line("readings/s", round(report.tally.readings_accepted / busy_s) if busy_s else 0,
              "accepted and processed, from the first send until settled"),
    ]


def _verdict(report: Report) -> str:
    if report.consistent:
        return ("consistent: every accepted reading stored once, every expected alert raised, "
                "every malformed or forbidden message refused")
    problems = []
    if not report.settled:
        differing = ", ".join(report.expected.differences(report.observed))
        problems.append(f"{differing} not as expected when the wait for processing ended")
    if report.tally.malformed_accepted:
        problems.append(f"{report.tally.malformed_accepted} malformed or forbidden request(s) accepted")
    if report.tally.refused_otherwise:
        problems.append(f"bad requests refused with another status than planned: "
                        f"{_inline(report.tally.refused_otherwise)}")
    if report.tally.http_failed or report.tally.kafka_failed:
        problems.append("some sends failed")
    if report.tally.http_rejected.total() != report.tally.malformed_sent.total():
        problems.append("rejections differ from the malformed and forbidden requests sent")
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
    alerts = (f"SELECT rule_id, severity, status, count(*) FROM alerts WHERE raised_at >= '{start}' "
              f"AND raised_at < '{end}' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    custom = report.state_dir != Settings().state_dir.resolve()
    state = f"SMARTGRID_STATE_DIR={shlex.quote(str(report.state_dir))} " if custom else ""
    lines = ["look at them" + ("" if report.options.keep_running else
                               " (the platform stops now; the rows stay in PostgreSQL: run `smartgrid up`, "
                               "or the demo with --keep-running, to query them through it)"),
             f"  {psql} {_double_quoted(sensors)}",
             f"  {psql} {_double_quoted(meters)}",
             f"  {psql} {_double_quoted(alerts)}",
             *_alert_places(report),
             f"  {state}smartgrid dlq list",
             f"  logs: {logs}/demo.log (platform), {logs}/functions/<function>.log",
             *(f"  {name:<12}{url}" for name, url in report.endpoints.items())]
    return lines


def _alert_places(report: Report) -> list[str]:
    """The alert API's listing of the period, and where the local mail sink and webhook receiver keep what they got."""
    endpoints, since = report.endpoints, f"{report.period.start:%Y-%m-%dT%H:%M:%SZ}"
    places = []
    if "alerts" in endpoints:
        listing = f"{endpoints['alerts']}?status=all&since={since}&limit=1000"
        places.append(f"  curl {shlex.quote(listing)}")
    if "smtp" in endpoints:
        places.append(f"  mail: {report.state_dir / MAIL_FOLDER} (Maildir of the local SMTP sink, one file a message)")
    if "webhook" in endpoints:
        places.append(f"  webhooks: {report.state_dir / WEBHOOKS_FILE} (one JSON line a request)")
    return places


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
