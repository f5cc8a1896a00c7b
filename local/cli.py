"""The `smartgrid` command line.

Every option falls back to its environment variable, then to the default documented in
shared/config.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from local import aio, analytics_cli, dlq, forecast_cli, identity_cli, migrate_cli
from local.demo.options import DemoOptions
from local.demo.profiles import ProfileDataMissing
from local.demo.runner import demo
from local.eventing.dataplane import DataPlaneOptions
from local.eventing.manifests import ManifestError, load_manifests
from local.eventing.workers import serve as serve_workers
from local.functions import FunctionsDirError
from local.gateway import runner as gateway_runner
from local.gateway.manifests import load_manifests as load_gateway_manifests
from local.platform import AlreadyRunningError, down, up
from local.report import command as report_cli
from local.servers.kafka import kafka_server
from local.servers.postgres import ClusterInitError, PostgresNotInstalledError
from local.servers.process import ServerStartError
from local.state import PlatformNotRunning
from local.users_client import UsersApiError
from shared.auth.client import TokenRefused, TokenUnavailable, token_endpoint
from shared.config import ConfigError, Settings
from shared.migrations import (
    MigrationMismatch,
    MigrationNameError,
    MigrationsNotFoundError,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `smartgrid` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        settings = Settings.from_env()
        return args.command(args, settings)
    except (ConfigError, ManifestError, FunctionsDirError, ProfileDataMissing, MigrationsNotFoundError,
            MigrationNameError) as error:
        print(f"smartgrid: {error}", file=sys.stderr)
        return 2
    except (AlreadyRunningError, ServerStartError, PostgresNotInstalledError, ClusterInitError,
            PlatformNotRunning, TokenUnavailable, TokenRefused, MigrationMismatch) as error:
        print(f"smartgrid: {error}", file=sys.stderr)
        return 1
    except UsersApiError as error:
        print(f"smartgrid: {identity_cli.refusal(error)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartgrid", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    eventing = commands.add_parser("eventing", help="the local Knative Eventing data plane")
    eventing_commands = eventing.add_subparsers(required=True, metavar="COMMAND")
    serve = eventing_commands.add_parser(
        "serve", help="serve Brokers, Triggers, KafkaSources and PingSources from YAML")
    serve.add_argument("-f", "--file", required=True, type=Path, help="a manifest file or a folder of them")
    serve.add_argument("--ingress-port", type=int, help="broker ingress port (env SMARTGRID_INGRESS_PORT)")
    serve.add_argument("--workers", type=int,
                       help="data plane processes: 1 runs everything; n: an ingress and n-1 dispatchers "
                            "(env SMARTGRID_EVENTING_WORKERS)")
    serve.add_argument("--namespace", default="default", help="namespace of manifests that name none")
    serve.add_argument(
        "--service", action="append", default=[], metavar="NAME=URL",
        help="URL of a Knative Service that a `ref` names (repeatable)",
    )
    serve.set_defaults(command=_eventing_serve)

    gateway = commands.add_parser("gateway", help="the local API gateway (Istio's semantics)")
    gateway_commands = gateway.add_subparsers(required=True, metavar="COMMAND")
    gateway_serve = gateway_commands.add_parser(
        "serve", help="enforce Gateway, VirtualService, RequestAuthentication and AuthorizationPolicy YAML")
    gateway_serve.add_argument("-f", "--file", type=Path, help="a manifest file or a folder of them "
                                                              "(env SMARTGRID_ISTIO_DIR)")
    gateway_serve.add_argument("--port", type=int, help="port to listen on (env SMARTGRID_GATEWAY_PORT)")
    gateway_serve.add_argument("--issuer", help="the running token issuer the manifests' issuer stands for "
                                                "(env SMARTGRID_AUTH_ISSUER)")
    gateway_serve.add_argument(
        "--service", action="append", default=[], metavar="NAME=URL",
        help="local URL of a Knative Service a route or a jwksUri names (repeatable)",
    )
    gateway_serve.set_defaults(command=_gateway_serve)

    start = commands.add_parser(
        "up", help="run Kafka, PostgreSQL, every function (scaled to zero when idle) and the eventing data plane",
    )
    start.add_argument("--ingress-port", type=int, help="broker ingress port (env SMARTGRID_INGRESS_PORT)")
    start.add_argument(
        "--idle-seconds", type=float, help="idle time before a function scales to zero (env SMARTGRID_IDLE_SECONDS)",
    )
    start.set_defaults(command=_up)
    stop = commands.add_parser("down", help="stop the running `smartgrid up`")
    stop.set_defaults(command=_down)

    defaults = DemoOptions()
    show = commands.add_parser(
        "demo", help="run the platform with a simulated fleet as workload, then print what it made of it",
    )
    show.add_argument("--sensors", type=int, default=defaults.sensors, help="grid sensors posting over HTTP")
    show.add_argument("--meters", type=int, default=defaults.meters, help="smart meters behind the gateways")
    show.add_argument("--gateways", type=int, default=defaults.gateways, help="field gateways producing to Kafka")
    show.add_argument("--hours", type=int, default=defaults.hours,
                      help="simulated hours, from midnight UTC (24: yesterday)")
    show.add_argument("--interval-minutes", type=int, default=defaults.interval_minutes,
                      help="one reading per device every N simulated minutes")
    show.add_argument("--duration", type=float, default=defaults.duration_s, metavar="SECONDS",
                      help="wall time to spread the simulated period over")
    show.add_argument("--seed", type=int, default=defaults.seed, help="seed of the fleet, readings and injections")
    show.add_argument("--keep-running", action="store_true",
                      help="keep the platform up after the summary, until Ctrl-C or `smartgrid down`")
    show.set_defaults(command=_demo)

    dlq = commands.add_parser("dlq", help="dead letters: events that could not be processed")
    dlq_commands = dlq.add_subparsers(required=True, metavar="COMMAND")
    listing = dlq_commands.add_parser("list", help="show dead letters, newest first")
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(command=_dlq_list)
    again = dlq_commands.add_parser("replay", help="send dead letters to the broker again, marking them replayed")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", dest="ids", help="a dead letter's ID (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    again.set_defaults(command=_dlq_replay)

    forecast_cli.add_parser(commands)
    analytics_cli.add_parser(commands)
    report_cli.add_parser(commands)
    identity_cli.add_parser(commands)
    migrate_cli.add_parser(commands)
    return parser


def _eventing_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.ingress_port is not None:
        settings = replace(settings, ingress_port=args.ingress_port)
    workers = args.workers if args.workers is not None else settings.eventing_workers
    if workers < 1:
        raise ConfigError(f"--workers / SMARTGRID_EVENTING_WORKERS: expected at least 1, found {workers}")
    config = load_manifests(args.file, default_namespace=args.namespace)
    service_urls = dict(_name_value(item) for item in args.service)
    with kafka_server(settings.kafka_bootstrap, settings.state_dir) as bootstrap:
        options = DataPlaneOptions(
            bootstrap=bootstrap,
            port=settings.ingress_port,
            service_urls=service_urls,
            max_event_bytes=settings.max_event_bytes,
            default_timeout_s=settings.delivery_timeout_s,
            fetch_wait_ms=settings.kafka_fetch_wait_ms,
            credentials=_delivery_credentials(settings),
        )
        return serve_workers(config, options, workers)


def _delivery_credentials(settings: Settings) -> tuple[str, str, str] | None:
    """The data plane's own client (deliveries carry its token) when SMARTGRID_CLIENT_ID, _SECRET and
    SMARTGRID_AUTH_ISSUER are set; else deliveries carry none."""
    if settings.client_id and settings.client_secret and settings.auth_issuer:
        return token_endpoint(settings.auth_issuer), settings.client_id, settings.client_secret
    return None


def _gateway_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.port is not None:
        settings = replace(settings, gateway_port=args.port)
    manifests = load_gateway_manifests(args.file or settings.istio_dir)
    services = dict(_name_value(item) for item in args.service)
    options = gateway_runner.gateway_options(settings, services, issuer=args.issuer or settings.auth_issuer,
                                             redis_url=settings.redis_url)
    aio.run(gateway_runner.serve(manifests, options))
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    if args.ingress_port is not None:
        settings = replace(settings, ingress_port=args.ingress_port)
    if args.idle_seconds is not None:
        settings = replace(settings, idle_seconds=args.idle_seconds)
    up(settings)
    return 0


def _down(_args: argparse.Namespace, settings: Settings) -> int:
    return down(settings)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    options = DemoOptions(
        sensors=args.sensors, meters=args.meters, gateways=args.gateways, hours=args.hours,
        interval_minutes=args.interval_minutes, duration_s=args.duration, seed=args.seed,
        keep_running=args.keep_running,
    )
    try:
        options.check()
    except ValueError as error:
        print(f"smartgrid demo: {error}", file=sys.stderr)
        return 2
    return demo(settings, options)


def _dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    letters = aio.run(dlq.list_dead_letters(settings, include_replayed=args.all, limit=args.limit))
    print(dlq.format_table(letters))
    return 0


def _dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    replayed, failed = aio.run(dlq.replay(settings, None if args.all else args.ids))
    print(f"replayed {len(replayed)} dead letter(s){': ' + ', '.join(map(str, replayed)) if replayed else ''}")
    for letter_id, reason in failed:
        print(f"not replayed {letter_id}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"--service: expected NAME=URL, found {item!r}")
    return name, value
