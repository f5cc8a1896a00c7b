"""`smartgrid up` and `smartgrid down`: the whole platform on one machine, and stopping it.

`up` starts (or reuses) Kafka, PostgreSQL, Redis and memcached, provisions the domain databases, serves
the event catalogue as a Schema Registry, puts an Activator (scale to zero) in front of every function,
and serves the eventing manifests with the data plane. Each function gets `K_SINK` (the broker URL),
`K_SERVICE`, `SMARTGRID_SCHEMA_REGISTRY_URL`, `SMARTGRID_REDIS_URL`, `SMARTGRID_MEMCACHED_URL` and one
`SMARTGRID_DSN_<DOMAIN>` per domain, the token issuer `SMARTGRID_AUTH_ISSUER` (the users function's
`/api/v1/auth`) with its own OAuth client (`SMARTGRID_CLIENT_ID`/`_SECRET`: local/identity.py), and the
notification sinks: `SMARTGRID_SMTP_URL` (else a local mail
sink), `SMARTGRID_WEBHOOK_URL` (else a local webhook receiver) and `SMARTGRID_WEBHOOK_SECRET` (else one generated for this run).

A ref to a Knative Service that has no function folder does not stop `up`: it is logged as a
warning and resolves to MissingServices, which answers 503. The Trigger keeps consuming, so each
of its events is retried, then dead-lettered (or logged as dropped) like with any failing
subscriber; skipping the Trigger instead would leave its events unseen in Kafka, and a consumer
group that starts later at the latest offset would never deliver them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from local import aio
from local.activator import Activator, MissingServices
from local.eventing.dataplane import DataPlane, DataPlaneOptions
from local.eventing.manifests import (
    Broker,
    DeliverySpec,
    Destination,
    EventingConfig,
    ManifestError,
    load_manifests,
)
from local.functions import Function, discover
from local.gateway.manifests import Manifests as GatewayManifests
from local.gateway.manifests import load_manifests as load_gateway_manifests
from local.gateway.runner import gateway_options, start_gateway
from local.identity import (
    CLI_CLIENT,
    EVENTING_CLIENT,
    LocalIdentity,
    provision_identity,
)
from local.registry import registry_app
from local.servers.databases import provision
from local.servers.kafka import kafka_server
from local.servers.memcached import memcached_server
from local.servers.postgres import postgres_server
from local.servers.redis import redis_server
from local.servers.smtp import mail_sink, without_password
from local.servers.webhook import webhook_receiver
from local.state import PlatformState
from shared.config import Settings
from shared.users.api import AUTH_PREFIX
from shared.validation.catalogue import Catalogue

log = logging.getLogger("smartgrid.platform")

PID_FILE = "up.pid"
# Functions that serve an HTTP API (not CloudEvents) are listed with the path of their API.
API_PATHS = {"users": "/api/v1/users", "alerts": "/api/v1/alerts", "analytics": "/api/v1/analytics", "readings": "/api/v1/readings",
             "forecast": "/api/v1/forecasts"}
DOWN_TIMEOUT_S = 20.0
T = TypeVar("T")


class AlreadyRunningError(RuntimeError):
    """Raised when `up` finds another `smartgrid up` alive through the pid file."""


@dataclass(frozen=True)
class RunningPlatform:
    """A started platform: public endpoints (`broker` first, `auth` the token issuer, `gateway` the API
    gateway), domain DSNs, Kafka,
    the broker's topic and the command line's OAuth client (`client_id`, `client_secret`; role admin)."""

    endpoints: dict[str, str]
    dsns: dict[str, str]
    kafka_bootstrap: str
    broker_topic: str
    client: dict[str, str]


def up(settings: Settings) -> None:
    """Run the platform until SIGINT or SIGTERM, then stop everything it started (reused servers stay)."""
    aio.run(_serve(settings))


@asynccontextmanager
async def running_platform(settings: Settings) -> AsyncIterator[RunningPlatform]:
    """The whole platform, started and ready inside the block; what it started is stopped after it.

    Holds the pid file and writes the state file like `up`, so `smartgrid down` and `smartgrid dlq`
    work against it.
    """
    functions = discover(settings.functions_dir)
    config = load_manifests(settings.eventing_dir)
    broker = _only_broker(config, settings.eventing_dir)
    istio = load_gateway_manifests(settings.istio_dir)
    settings.gateway_tls()
    with _pid_file(settings.state_dir / PID_FILE):
        async with AsyncExitStack() as stack:
            yield await _start(stack, settings, functions, config, broker, istio)


def down(settings: Settings, timeout: float = DOWN_TIMEOUT_S) -> int:
    """SIGTERM the running `smartgrid up`, wait up to `timeout` s, report; 0 once none runs."""
    path = settings.state_dir / PID_FILE
    pid = _read_pid(path)
    if pid is None or not _is_up(pid):
        if pid is not None:
            path.unlink(missing_ok=True)
        print(f"no smartgrid up or demo is running (no live pid in {path})")
        return 0
    os.kill(pid, signal.SIGTERM)
    began = time.monotonic()
    while _read_pid(path) == pid and _is_up(pid):
        if time.monotonic() - began > timeout:
            print(f"smartgrid down: expected the platform (pid {pid}) to stop within {timeout:.0f} s "
                  "of SIGTERM, found it still running", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"stopped the platform (pid {pid}) in {time.monotonic() - began:.1f} s")
    return 0


def domain_environment(dsns: dict[str, str]) -> dict[str, str]:
    """The variables that give a function each domain's DSN: `SMARTGRID_DSN_<DOMAIN>`."""
    return {f"SMARTGRID_DSN_{domain.upper()}": dsn for domain, dsn in dsns.items()}


async def _serve(settings: Settings) -> None:
    stopping = asyncio.create_task(aio.until_stopped())
    await asyncio.sleep(0)  # the signal handlers are in place before anything starts
    try:
        async with running_platform(settings) as platform:
            if not stopping.done():
                for name, url in platform.endpoints.items():
                    print(name, url)
                sys.stdout.flush()
            await stopping
            log.info("stopping")
    finally:
        stopping.cancel()


async def _start(
    stack: AsyncExitStack, settings: Settings, functions: list[Function], config: EventingConfig, broker: Broker,
    istio: GatewayManifests,
) -> RunningPlatform:
    """Start everything, each stopped by `stack` in reverse; return what the platform offers."""
    state_dir = settings.state_dir.resolve()
    bootstrap = await _enter(stack, kafka_server(settings.kafka_bootstrap, state_dir))
    admin_dsn = await _enter(stack, postgres_server(settings.pg_dsn, state_dir))
    dsns = await asyncio.to_thread(provision, admin_dsn, settings.db_prefix)
    redis_url = await _enter(stack, redis_server(settings.redis_url, state_dir))
    memcached_url = await _enter(stack, memcached_server(settings.memcached_url, state_dir))
    smtp_url = await _enter(stack, mail_sink(settings.smtp_url, state_dir))
    webhook_secret = settings.webhook_secret or secrets.token_hex(32)
    webhook_url = await stack.enter_async_context(webhook_receiver(settings.webhook_url, webhook_secret, state_dir))
    env = {**domain_environment(dsns), "SMARTGRID_REDIS_URL": redis_url, "SMARTGRID_MEMCACHED_URL": memcached_url,
           "SMARTGRID_SMTP_URL": smtp_url,
           "SMARTGRID_RULES_FILE": str(settings.rules_file), "SMARTGRID_CHANNELS_FILE": str(settings.channels_file),
           "SMARTGRID_WEBHOOK_URL": webhook_url, "SMARTGRID_WEBHOOK_SECRET": webhook_secret}
    # Bound before the functions start, since K_SINK must name its port, and kept so that
    # nothing started meanwhile can take it.
    ingress_socket = aio.bound_socket("127.0.0.1", settings.ingress_port)
    stack.callback(ingress_socket.close)
    port = ingress_socket.getsockname()[1]
    broker_url = f"http://127.0.0.1:{port}/{broker.namespace}/{broker.name}"
    endpoints = [("broker", broker_url)]
    catalogue = Catalogue.load(settings.schemas_dir / "events", max_future_seconds=settings.max_future_seconds)
    registry, registry_url = await aio.serve(registry_app(catalogue))
    stack.push_async_callback(registry.cleanup)
    endpoints += [("registry", registry_url), ("redis", redis_url), ("memcached", memcached_url),
                  ("smtp", without_password(smtp_url)),
                  ("webhook", webhook_url)]
    env["SMARTGRID_SCHEMA_REGISTRY_URL"] = registry_url
    service_urls: dict[str, str] = {}
    activators: dict[str, Activator] = {}
    for function in functions:
        activator = Activator(function, broker_url, env, state_dir / "logs" / "functions", settings.idle_seconds)
        stack.push_async_callback(activator.stop)
        service_urls[function.name] = await activator.start()
        activators[function.name] = activator
        endpoints.append((function.name, activator.url + API_PATHS.get(function.name, "")))
    identity = await _identity(settings, service_urls, dsns, list(activators))
    if identity is not None:
        for name, activator in activators.items():
            activator.add_environment(identity.function_environment(name))
        endpoints.insert(1, ("auth", identity.issuer))
    refs = _service_refs(config)
    for name, routes in istio.destinations().items():  # the API gateway's routes
        refs[name] += routes
    missing = {name: users for name, users in refs.items() if name not in service_urls}
    if missing:
        stand_in = MissingServices()
        stack.push_async_callback(stand_in.stop)
        await stand_in.start()
        for name, users in sorted(missing.items()):
            log.warning("Knative Service '%s' (%s) has no function folder in %s: it answers 503, so its events "
                        "are retried, then dead-lettered or dropped", name, "; ".join(users), settings.functions_dir)
            service_urls[name] = stand_in.service_url(name)
    plane = DataPlane(config, DataPlaneOptions(
        bootstrap=bootstrap,
        port=port,
        sock=ingress_socket,
        service_urls=service_urls,
        max_event_bytes=settings.max_event_bytes,
        default_timeout_s=settings.delivery_timeout_s,
        fetch_wait_ms=settings.kafka_fetch_wait_ms,
        credentials=identity.credentials(EVENTING_CLIENT) if identity is not None else None,
    ))
    stack.push_async_callback(plane.stop)
    await plane.start()
    # The API gateway (Istio's ingress gateway and sidecars, from knative/istio/), in front of the functions.
    issuer = identity.issuer if identity is not None else None
    gateway = await start_gateway(istio, gateway_options(settings, service_urls, issuer=issuer, redis_url=redis_url))
    stack.push_async_callback(gateway.stop)
    endpoints.insert(2 if identity is not None else 1, ("gateway", gateway.url))
    client = {}
    if identity is not None:
        _, client_id, client_secret = identity.credentials(CLI_CLIENT)
        client = {"client_id": client_id, "client_secret": client_secret}
    state_file = PlatformState(dict(endpoints), dsns, client).save(state_dir)
    stack.callback(state_file.unlink, missing_ok=True)
    return RunningPlatform(dict(endpoints), dsns, bootstrap, broker.topic, client)


async def _identity(settings: Settings, service_urls: dict[str, str], dsns: dict[str, str],
                    functions: list[str]) -> LocalIdentity | None:
    """The issuer (the users function's URL, or SMARTGRID_AUTH_ISSUER), keys, clients and first admin; None
    (logged) for a functions folder without the users function and no SMARTGRID_AUTH_ISSUER."""
    if "users" not in service_urls and settings.auth_issuer is None:
        log.warning("no users function in %s and no SMARTGRID_AUTH_ISSUER: no tokens are issued, deliveries carry "
                    "none, and functions that check tokens refuse every request", settings.functions_dir)
        return None
    issuer = settings.auth_issuer or service_urls["users"] + AUTH_PREFIX
    return await provision_identity(dsns["users"], issuer, settings.keys_dir().resolve(), functions,
                                    settings.admin_password)


async def _enter(stack: AsyncExitStack, manager: AbstractContextManager[T]) -> T:
    """Enter a blocking context manager in a thread; `stack` exits it in a thread too."""
    value = await asyncio.to_thread(manager.__enter__)
    stack.push_async_callback(asyncio.to_thread, manager.__exit__, None, None, None)
    return value


def _only_broker(config: EventingConfig, eventing_dir: Path) -> Broker:
    if len(config.brokers) != 1:
        found = ", ".join(f"{b.namespace}/{b.name}" for b in config.brokers) or "none"
        raise ManifestError(
            f"{eventing_dir}: expected exactly one Broker (the functions' K_SINK), found {found}"
        )
    return config.brokers[0]


def _service_refs(config: EventingConfig) -> dict[str, list[str]]:
    """Knative Service name -> the resources that ref it."""
    refs: dict[str, list[str]] = defaultdict(list)

    def note(destination: Destination | None, user: str) -> None:
        if destination is not None and destination.service is not None:
            refs[destination.service].append(user)

    for broker in config.brokers:
        note(_dead_letter_sink(broker.delivery), f"dead-letter sink of Broker {broker.namespace}/{broker.name}")
    for trigger in config.triggers:
        note(trigger.subscriber, f"subscriber of Trigger {trigger.namespace}/{trigger.name}")
        note(_dead_letter_sink(trigger.delivery), f"dead-letter sink of Trigger {trigger.namespace}/{trigger.name}")
    for source in config.sources:
        note(source.sink, f"sink of KafkaSource {source.namespace}/{source.name}")
        note(_dead_letter_sink(source.delivery), f"dead-letter sink of KafkaSource {source.namespace}/{source.name}")
    for ping in config.pings:
        note(ping.sink, f"sink of PingSource {ping.namespace}/{ping.name}")
        note(_dead_letter_sink(ping.delivery), f"dead-letter sink of PingSource {ping.namespace}/{ping.name}")
    return refs


def _dead_letter_sink(spec: DeliverySpec | None) -> Destination | None:
    return spec.dead_letter_sink if spec is not None else None


@contextmanager
def _pid_file(path: Path) -> Iterator[None]:
    """Hold `path` with our pid while the block runs; refuse when another `up` holds it."""
    pid = _read_pid(path)
    if pid is not None and _is_up(pid):
        raise AlreadyRunningError(
            f"expected no other smartgrid up or demo, found one running as pid {pid} ({path}); stop it with `smartgrid down`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if _read_pid(path) == os.getpid():
            path.unlink()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_up(pid: int) -> bool:
    """True when `pid` is a live `smartgrid ... up` or `... demo` (not a zombie nor a stranger with its pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return (b"up" in args or b"demo" in args) and any(b"smartgrid" in arg for arg in args)
