"""`smartgrid demo`: the platform (as `smartgrid up` runs it) with a simulated fleet as workload.

Starts the platform, registers the fleet with the users service, sends one simulated period of
sensor readings over HTTP (each sensor with its own token) and gateway batches to Kafka, waits until
processing settled, prints the summary, then stops the platform (or, with
--keep-running, keeps it up until SIGINT or SIGTERM). The platform's logs go to
`<state dir>/logs/demo.log`, so that the terminal shows the progress bar and the summary.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from local import aio
from local.demo.anomalies import SILENCE
from local.demo.expected_alerts import ExpectedAlerts
from local.demo.fleet import build_fleet
from local.demo.generation import register_generation
from local.demo.observe import Expected, Observed, Observer, settle
from local.demo.options import DemoOptions
from local.demo.profiles import PROFILES, LoadProfile, load_profile
from local.demo.registration import RegistrationError, register
from local.demo.rules import demo_rules
from local.demo.senders import (
    METER_TOPIC,
    HttpSender,
    KafkaSender,
    registry_avro_encoder,
)
from local.demo.summary import Report, Timings, format_summary
from local.demo.tally import Tally
from local.demo.tokens import SensorTokens
from local.demo.workload import plan_injections, send_period
from local.eventing.manifests import load_manifests
from local.platform import RunningPlatform, running_platform
from shared.alerting.rules import RuleSet
from shared.auth.client import token_endpoint
from shared.config import Settings

INTERRUPTED = 130
QUIET_S = 120.0  # longer than the retry schedules, and than detect may lag behind storage without a new alert
MET_QUIET_S = 3.0  # once as expected: for missing-data alerts and notifications to come in
SETTLE_TIMEOUT_S = 900.0

INGEST_PATH = "/api/v1/ingest"  # the VirtualService route of knative/istio/gateway.yaml


def demo(settings: Settings, options: DemoOptions) -> int:
    """Run the demo (`options` checked); 0 when everything was processed as expected, 1 if not, 130 if interrupted."""
    profiles = {name: load_profile(name) for name in PROFILES}
    period = options.period(datetime.now(UTC))
    simulated_s = period.count * period.interval.total_seconds()
    rules_file, lateness_s = demo_rules(settings.rules_file, settings.state_dir, simulated_s, options.duration_s)
    settings = replace(settings, rules_file=rules_file)
    log_path = _log_to_file(settings.state_dir / "logs" / "demo.log")
    logging.getLogger("smartgrid.demo").info("alert rules %s: missing-data lateness %.0f s of simulated time",
                                             rules_file, lateness_s)
    print(f"smartgrid demo: starting the platform (logs in {log_path})", file=sys.stderr, flush=True)
    return aio.run(_run(settings, options, profiles))


async def _run(settings: Settings, options: DemoOptions, profiles: dict[str, LoadProfile]) -> int:
    began = time.monotonic()
    stopping = asyncio.create_task(aio.until_stopped())
    await asyncio.sleep(0)  # the signal handlers are in place before anything starts
    try:
        async with running_platform(settings) as platform:
            if stopping.done():
                return INTERRUPTED
            work = asyncio.create_task(_workload(settings, platform, options, profiles, time.monotonic() - began))
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                with suppress(asyncio.CancelledError):
                    await work
                print("smartgrid demo: interrupted; stopping the platform", file=sys.stderr, flush=True)
                return INTERRUPTED
            try:
                report = work.result()
            except RegistrationError as error:
                print(f"smartgrid demo: {error}; nothing was sent, stopping the platform", file=sys.stderr,
                      flush=True)
                return 1
            print(format_summary(report), flush=True)
            if options.keep_running and not stopping.done():
                print("\nthe platform keeps running: Ctrl-C or `smartgrid down` stops it", flush=True)
                await stopping
        return 0 if report.consistent else 1
    finally:
        stopping.cancel()


async def _workload(
    settings: Settings, platform: RunningPlatform, options: DemoOptions, profiles: dict[str, LoadProfile],
    platform_s: float,
) -> Report:
    """Register the fleet, send the simulated period, wait until processing settled; return the report."""
    period = options.period(datetime.now(UTC))
    fleet = build_fleet(options.sensors, options.meters, options.gateways, options.seed)
    injections = plan_injections(fleet, period, options.seed)
    registering_began = time.monotonic()
    registration = await register(platform.endpoints["auth"], platform.client, fleet)
    tokens = SensorTokens(token_endpoint(platform.endpoints["auth"]), registration.secrets)
    await tokens.take_all()
    registering_s = time.monotonic() - registering_began
    avro = await asyncio.to_thread(registry_avro_encoder, platform.endpoints["registry"])
    generation = await register_generation(platform.endpoints["redis"], settings.redis_prefix,
                                           [meter.meter_id for meter in fleet.meters if meter.pv_kwp])
    expected_alerts = ExpectedAlerts(RuleSet.load(settings.rules_file), generation)
    observer = Observer(platform.dsns["smartgrid"], period, [sensor.device_id for sensor in fleet.sensors],
                        [meter.meter_id for meter in fleet.meters], expected_alerts.timed_rules)
    await observer.start()
    try:
        alerts_before = await observer.alerts_before()
        tally = Tally(expected_alerts, await observer.stored_before())
        sending_began = time.monotonic()
        kafka = KafkaSender(platform.kafka_bootstrap, tally)
        try:
            # Devices reach ingest as on a cluster: through the API gateway's route /api/v1/ingest.
            async with HttpSender(platform.endpoints["gateway"] + INGEST_PATH, tally, tokens) as http:
                await send_period(fleet, period, profiles, options.seed, injections, options.duration_s, http, kafka,
                                  avro, tally)
        finally:
            await kafka.close()
        settling_began = time.monotonic()
        record_consumers = _record_consumers(settings)
        expected = Expected(
            sensor_rows=tally.sensor_readings_accepted - tally.sensor_readings_stored_before,
            meter_rows=tally.meter_readings_produced - tally.meter_readings_stored_before,
            dead_letters=tally.malformed_records.total() * record_consumers,
            alerts=expected_alerts.by_rule(alerts_before),
            timed_rules=expected_alerts.timed_rules,
        )
        observed, settled = await _settle(observer, expected)
    finally:
        await observer.close()
    return Report(
        options=options, period=period, feeders=len(fleet.feeders), registration=registration,
        tokens_taken=tokens.taken, tally=tally, expected=expected,
        observed=observed, settled=settled,
        alerts_before=len(alerts_before.intersection(expected_alerts.raised)), record_consumers=record_consumers,
        silenced=frozenset(anomaly.device_id for anomaly in injections.planned if anomaly.kind == SILENCE),
        timings=Timings(platform_s, registering_s, settling_began - sending_began,
                        time.monotonic() - settling_began, options.duration_s),
        endpoints=platform.endpoints, dsn=platform.dsns["smartgrid"], state_dir=settings.state_dir.resolve(),
    )


def _record_consumers(settings: Settings) -> int:
    """The KafkaSources that read the meter topic and dead-letter what they cannot process: each
    malformed record becomes one dead letter per source."""
    sources = load_manifests(settings.eventing_dir).sources
    return sum(1 for source in sources if METER_TOPIC in source.topics and source.delivery is not None
               and source.delivery.dead_letter_sink is not None)


async def _settle(observer: Observer, expected: Expected) -> tuple[Observed, bool]:
    """Wait for processing to settle, with a bar of the rows stored."""
    total = expected.sensor_rows + expected.meter_rows
    with tqdm(total=total, desc="readings stored", unit="row", file=sys.stderr) as bar:

        def show(observed: Observed) -> None:
            bar.update(observed.sensor_rows + observed.meter_rows - bar.n)
            bar.set_postfix_str(f"{observed.alerts.total():,} alerts, {observed.dead_letters.total():,} dead letters")

        return await settle(observer.observe, expected, quiet_s=QUIET_S, met_quiet_s=MET_QUIET_S,
                            timeout_s=SETTLE_TIMEOUT_S, on_change=show)


def _log_to_file(path: Path) -> Path:
    """Send log records to `path`; the terminal keeps errors only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(logging.ERROR)
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(file_handler)
    return path.resolve()
