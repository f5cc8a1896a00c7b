"""Identity and access: token checks in ingest's path, what they add to ingest's requests, and the token endpoint.

Starts (or reuses, SMARTGRID_PG_DSN) PostgreSQL, provisions databases of its own, provisions the platform's
identity the way `smartgrid up` does (local/identity.py: a signing key, the functions' OAuth clients, the
first admin), runs the users function under functions-framework, registers one sensor over its API, then in
one run:

1. token checks in process (`--checks` each), keys cached as ingest's guard holds them (RemoteJwks of the
   running users function, fetched once):
   a. raw limit: cryptography's RSA-2048 PKCS1v15/SHA-256 verify of one token's signature alone, checks/s;
   b. `TokenVerifier.verify` of a token not seen before (header parse, kid lookup, signature, claims),
      checks/s: the ratio to (a) is PyJWT's and the claims' overhead; and of a token seen before (the
      verified-token cache: what a device's repeated requests cost);
   c. `Guard.authenticate` + `Guard.authorize` on a Starlette Request built in process (a service token
      on GET /api/v1/devices/{id}, the registry's route: the whole role matrix is walked), checks/s;
   d. ingest's own auth step, `Guard.authenticate` + `Senders.sender` (the device registry's cached
      answer), checks/s with p50/p99.
2. ingest over HTTP, `--requests` POSTs of one binary-mode sensor reading each, `--concurrency` in flight,
   in `--rounds` alternating rounds so every server sees the same conditions. The broker (K_SINK) is
   bench/eventing_bench.py's trivial subscriber (a raw asyncio protocol answering 202), so that ingest
   itself is measured and not Kafka. Two ingest servers run side by side under functions-framework:
   - with auth: functions/ingest/main.py as it is, the device's client_credentials token, the registry
     lookup cached (SMARTGRID_REGISTRY_CACHE_SECONDS);
   - without auth: the same file loaded unchanged in a server whose target is `handler` below, with its
     two auth steps (`guard.authenticate`, `senders.sender`) replaced by constants at run time; the same
     request bytes (Authorization header included), catalogue check, ownership check and broker post.
   Ingest always requires auth, so this patched server is the honest "without": same process model, same
   request, minus only the token check and registry lookup. Printed: requests/s, p50/p99 latency and the
   server's CPU per request (its process tree, /proc) of each, the difference (what auth adds), beside
   (1d) measured in the same run, the harness floor (the same POST straight to the sink) and the refusal
   path (a token with a broken signature: full verify, 401, an audit event to the broker).
3. the token endpoint of the users function over HTTP, `--concurrency` in flight:
   - `grant_type=password` logins (`--logins`, correct password only: the lockout counts failures per
     address), logins/s, p50/p99, the users function's CPU per login; the argon2id parameters are read
     from the stored hash and printed beside OWASP's minimum; the raw limit is `PasswordHasher.verify`
     with those parameters in this process, on 1 thread and on every core;
   - `grant_type=client_credentials` (the device's SHA-256 secret; `--requests` of them), tokens/s,
     beside the raw limit of signing: `TokenIssuer.issue` (RS256) in process.

Every line also gives the CPU per call (in process: this process's; over HTTP: the server's process tree,
and how long its main threads were runnable but waited for a CPU), which holds when other programs share
the machine while rates and latencies do not. At `--concurrency` in flight a server's latency is about
concurrency x its time per request, so a CPU difference shows up multiplied in p50.

Figures are printed, never asserted (only the answers' statuses are checked). Default run: about a minute
on 2 cores. `.venv/bin/python bench/auth_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import inspect
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp
import argon2
import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.requests import Request
from starlette.responses import Response

from bench.eventing_bench import Child, CpuMeter
from local import aio
from local.functions import Function
from local.identity import (
    CLI_CLIENT,
    LocalIdentity,
    function_client,
    provision_identity,
)
from local.servers.databases import drop, provision
from local.servers.postgres import postgres_server
from local.servers.process import ManagedProcess, free_port
from local.users_client import UsersClient
from shared.auth.client import ServiceToken, token_endpoint
from shared.auth.guard import Guard, verifier_from_settings
from shared.auth.jwks import RemoteJwks
from shared.auth.keys import KeyRing
from shared.auth.principal import Principal
from shared.auth.registry import RegisteredDevice
from shared.auth.tokens import TokenGrant, TokenIssuer, TokenVerifier
from shared.auth.wiring import device_registry
from shared.cloudevents import new_event, to_http_binary
from shared.config import Settings
from shared.readings.decoding import SENSOR_READING
from shared.readings.senders import Senders
from shared.resilience import Downstreams
from shared.users.oauth import PUBLIC_CLIENT
from shared.users.passwords import PASSWORD_HASHER

FUNCTIONS = REPO / "functions"
INGEST = FUNCTIONS / "ingest" / "main.py"
SOURCE = "/smartgrid/bench/auth"
DEVICE_ENV = "AUTH_BENCH_DEVICE_ID"  # the "without auth" server's device
OWASP_MINIMUM = "m=19 MiB (19456 KiB), t=2, p=1"
WIDTH = 64  # of the labels
Handler = Callable[[Request], Awaitable[Response]]
WITH_AUTH = "ingest with auth (device token, registry cached)"
WITHOUT_AUTH = "ingest without auth (auth steps answer constants)"


# --- the "without auth" ingest server: functions-framework loads this file with target `handler` ---------------


def ingest_without_auth(device_id: str) -> Handler:
    """functions/ingest/main.py's own handler, loaded unchanged, with its two auth steps (`guard.authenticate`
    and `senders.sender`) answering constants for `device_id`, a sensor: everything else stays (the
    catalogue, the ownership check of the event, the broker)."""
    spec = importlib.util.spec_from_file_location("ingest_main", INGEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    principal = Principal(device_id, "device", frozenset({"device"}), "sensor")
    device = RegisteredDevice(device_id, "sensor", None, False, frozenset())

    async def authenticate(_request: Request) -> Principal:
        return principal

    async def sender(_principal: Principal) -> RegisteredDevice:
        return device

    module.guard.authenticate = authenticate
    module.senders.sender = sender
    return module.handler


_without_auth: Handler | None = None


async def handler(request: Request) -> Response:
    """The "without auth" server's target: ingest_without_auth of the device named by AUTH_BENCH_DEVICE_ID."""
    global _without_auth
    if _without_auth is None:
        _without_auth = ingest_without_auth(os.environ[DEVICE_ENV])
    return await _without_auth(request)


# --- measuring -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Calls of one kind: their latencies (s), the wall time they took, the CPU they used (this process's in
    process, the server's over HTTP) and how long the server's main threads were runnable but waited for a CPU."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_s: float = 0.0
    cpu_wait_s: float | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_each(self) -> float:
        """CPU seconds per call."""
        return self.cpu_s / len(self.latencies)

    def cut(self, percent: int) -> float:
        """The `percent`th percentile latency, s."""
        return statistics.quantiles(self.latencies, n=100)[percent - 1]


async def timed(call: Callable[[], Any], count: int) -> Tally:
    """`count` calls one after the other (awaited when they return an awaitable)."""
    tally = Tally()
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        sent = time.perf_counter()
        result = call()
        if inspect.isawaitable(result):
            await result
        tally.latencies.append(time.perf_counter() - sent)
    tally.seconds, tally.cpu_s = time.perf_counter() - began, time.process_time() - cpu
    return tally


Send = Callable[[int], Awaitable[tuple[int, bytes]]]


async def hammer(send: Send, count: int, concurrency: int, expect: int, tally: Tally,
                 server_pid: int | None = None) -> None:
    """`count` requests `send(i)`, `concurrency` in flight, added to `tally` (with the CPU of `server_pid`'s
    process tree); raises when an answer's status is not `expect`."""
    pending = iter(range(count))

    async def worker() -> None:
        for i in pending:
            sent = time.perf_counter()
            status, body = await send(i)
            tally.latencies.append(time.perf_counter() - sent)
            if status != expect:
                raise RuntimeError(f"expected {expect}, found {status}: {body[:300]!r}")

    meter = CpuMeter({"server": server_pid}) if server_pid is not None else None
    if meter is not None:
        meter.start()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.seconds += time.perf_counter() - began
    if meter is not None:
        meter.stop()
        used = meter.used("server")
        tally.cpu_s += used["total"]
        tally.cpu_wait_s = (tally.cpu_wait_s or 0.0) + used["main_wait"]


def duration(seconds: float) -> str:
    """`seconds` in µs below a millisecond, else in ms."""
    return f"{seconds * 1e6:6.0f} µs" if seconds < 0.001 else f"{seconds * 1e3:6.2f} ms"


def report(label: str, tally: Tally, unit: str) -> None:
    """One line: rate, p50/p99 latency, CPU per call (over HTTP: the server's, and its wait for a CPU)."""
    line = (f"  {label:<{WIDTH}} {tally.rate:>9,.0f} {unit:<10} p50 {duration(tally.cut(50))}  "
            f"p99 {duration(tally.cut(99))}")
    if tally.cpu_wait_s is not None:
        line += (f"  server CPU {duration(tally.cpu_each).strip()}/req, waited for a CPU "
                 f"{duration(tally.cpu_wait_s / len(tally.latencies)).strip()}/req")
    elif tally.cpu_s:
        line += f"  CPU {duration(tally.cpu_each).strip()} each"
    print(line, flush=True)


def request_of(method: str, path: str, token: str) -> Request:
    """A Starlette Request as a server builds it, carrying `Authorization: Bearer <token>`."""
    return Request({"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                    "scheme": "http", "query_string": b"", "server": ("127.0.0.1", 8080),
                    "client": ("127.0.0.1", 50000), "headers": [(b"authorization", f"Bearer {token}".encode())]})


def broken(token: str) -> str:
    """`token` with one character of its signature changed: it parses, names a known kid, fails to verify."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    return f"{head}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1:]}"


# --- the platform pieces ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What the phases need: the issuer, this run's identity, the sink, the device and its secret, the admin."""

    issuer: str
    identity: LocalIdentity
    sink: str
    device_id: str
    device_secret: str
    admin_password: str
    users_dsn: str

    def settings(self) -> Settings:
        """The settings ingest runs with (its own OAuth client, the issuer, the broker)."""
        client_id = function_client("ingest")
        return Settings(auth_issuer=self.issuer, sink_url=self.sink, client_id=client_id,
                        client_secret=self.identity.secrets[client_id])


@asynccontextmanager
async def function_server(name: str, source: Path, sink: str, env: dict[str, str], log_dir: Path,
                          port: int | None = None) -> AsyncIterator[tuple[str, ManagedProcess]]:
    """(base URL, process) of `source` under functions-framework on `port` (default: a free one), stopped on
    exit."""
    port = port or free_port()
    process = Function(name, source).process(port, sink, env, log_dir / f"{name}.log")
    await asyncio.to_thread(process.start, port)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        await asyncio.to_thread(process.stop)


# --- the phases ------------------------------------------------------------------------------------------------


async def token_checks(setup: Setup, device_token: str, service_token: str, checks: int) -> Tally:
    """Phase 1; returns ingest's auth step (1d)."""
    settings = setup.settings()
    guard = Guard(verifier_from_settings(settings), source=SOURCE)  # ingest's guard, minus its refusal reporter
    registry = device_registry(settings, Downstreams.from_settings(settings))
    senders = Senders(registry)
    await guard.verifier.verify(device_token)  # fetches the JWKS once, as ingest's first request does
    await senders.sender(await guard.verifier.verify(device_token))  # caches the device, as ingest does

    public_key = KeyRing(setup.identity.keys_dir).signing_key().private.public_key()
    signed, _, signature = device_token.rpartition(".")
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    raw = await timed(lambda: public_key.verify(raw_signature, signed.encode(), pkcs1, sha256), checks)
    uncached = TokenVerifier(RemoteJwks(settings.jwks_url()).key_for, settings.require_issuer(), cache_s=0)
    verified = await timed(lambda: uncached.verify(device_token), checks)
    repeated = await timed(lambda: guard.verifier.verify(device_token), checks)
    registry_path = f"/api/v1/devices/{setup.device_id}"

    async def guard_check() -> None:
        request = request_of("GET", registry_path, service_token)
        guard.authorize(await guard.authenticate(request), request)

    guarded = await timed(guard_check, checks)

    async def ingest_auth() -> None:
        await senders.sender(await guard.authenticate(request_of("POST", "/", device_token)))

    ingest_step = await timed(ingest_auth, checks)
    await registry.close()

    print(f"1. token checks in process ({checks:,} each; RS256, RSA-{public_key.key_size}; "
          f"PyJWT {version('PyJWT')}, cryptography {version('cryptography')})")
    report("raw limit: cryptography RSA PKCS1v15/SHA-256 verify alone", raw, "checks/s")
    report(f"TokenVerifier.verify, a token not seen before ({verified.cpu_each / raw.cpu_each:.1f}x the raw CPU)",
           verified, "checks/s")
    report("TokenVerifier.verify, a token seen before (verified-token cache)", repeated, "checks/s")
    report("Guard.authenticate + authorize (GET /api/v1/devices/{id})", guarded, "checks/s")
    report("ingest's auth step: Guard.authenticate + Senders.sender (cached)", ingest_step, "checks/s")
    return ingest_step


async def ingest_requests(setup: Setup, device_token: str, with_auth: tuple[str, ManagedProcess],
                          without_auth: tuple[str, ManagedProcess], auth_step: Tally,
                          options: argparse.Namespace) -> None:
    """Phase 2."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {"device_id": setup.device_id, "feeder_id": "F-1", "timestamp": now, "voltage_v": {"l1": 231.0},
            "current_a": {"l1": 12.5}, "frequency_hz": 50.0}
    events = [to_http_binary(new_event(SENSOR_READING, "/bench/devices", uuid.uuid4().hex, data))
              for _ in range(min(options.requests, 1000))]
    passes = {  # label -> (URL, token, expected status, server)
        "harness floor: the same POST to the trivial broker": (setup.sink, device_token, 202, None),
        WITHOUT_AUTH: (without_auth[0], device_token, 202, without_auth[1]),
        WITH_AUTH: (with_auth[0], device_token, 202, with_auth[1]),
        "ingest, invalid token (bad signature: 401 + audit event)": (with_auth[0], broken(device_token), 401,
                                                                        with_auth[1]),
    }
    tallies = {label: Tally() for label in passes}
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        def sender(url: str, token: str) -> Send:
            authorization = {"Authorization": f"Bearer {token}"}

            async def send(i: int) -> tuple[int, bytes]:
                headers, body = events[i % len(events)]
                async with session.post(url, data=body, headers={**headers, **authorization}) as response:
                    return response.status, await response.read()

            return send

        for url, token, expect, _ in passes.values():  # warm-up: JWKS, own token, registry, connections
            await hammer(sender(url, token), 200, options.concurrency, expect, Tally())
        per_round = options.requests // options.rounds
        for _ in range(options.rounds):
            for label, (url, token, expect, server) in passes.items():
                await hammer(sender(url, token), per_round, options.concurrency, expect, tallies[label],
                             server.process.pid if server else None)

    print(f"2. ingest over HTTP ({per_round * options.rounds:,} POSTs per line, one sensor reading each, "
          f"{options.concurrency} in flight, {options.rounds} alternating rounds; broker: a trivial 202 sink)")
    for label, tally in tallies.items():
        report(label, tally, "req/s")
    plain, authed = tallies[WITHOUT_AUTH], tallies[WITH_AUTH]
    print(f"  auth adds: p50 {1e3 * (authed.cut(50) - plain.cut(50)):+.2f} ms, p99 "
          f"{1e3 * (authed.cut(99) - plain.cut(99)):+.2f} ms, server CPU "
          f"{1e3 * (authed.cpu_each - plain.cpu_each):+.3f} ms/req ({100 * (authed.cpu_each / plain.cpu_each - 1):+.0f}%), "
          f"throughput {100 * (authed.rate / plain.rate - 1):+.0f}%")
    print(f"  in process (1d) the auth step costs {1e6 * auth_step.cpu_each:.0f} µs of CPU: "
          f"{100 * auth_step.cpu_each / authed.cpu_each:.0f}% of the with-auth server's CPU per request")


def argon2_rate(stored_hash: str, password: str, count: int, threads: int) -> float:
    """Verifies/s of PASSWORD_HASHER.verify on `threads` threads, `count` each (argon2 releases the GIL)."""
    def run(_: int) -> None:
        for _ in range(count):
            PASSWORD_HASHER.verify(stored_hash, password)

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return threads * count / (time.perf_counter() - began)


async def token_endpoint_requests(setup: Setup, users: tuple[str, ManagedProcess],
                                  options: argparse.Namespace) -> None:
    """Phase 3."""
    with psycopg.connect(setup.users_dsn) as conn:
        stored_hash = conn.execute("SELECT password_hash FROM users WHERE username = 'admin'").fetchone()[0]
    found = argon2.extract_parameters(stored_hash)
    cores = os.cpu_count() or 1
    raw_one = await asyncio.to_thread(argon2_rate, stored_hash, setup.admin_password, options.argon2, 1)
    raw_all = await asyncio.to_thread(argon2_rate, stored_hash, setup.admin_password, options.argon2, cores)
    issuer = TokenIssuer(KeyRing(setup.identity.keys_dir), setup.issuer, lifetime_s=900)
    grant = TokenGrant(setup.device_id, "device", ("device",), setup.device_id, "sensor")
    signing = await timed(lambda: issuer.issue(grant), max(50, options.checks // 10))

    url = token_endpoint(setup.issuer)
    logins, client_tokens = Tally(), Tally()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=options.concurrency)) as session:
        async def post(form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
            async with session.post(url, data=form, headers=headers) as response:
                return response.status, await response.read()

        login_form = {"grant_type": "password", "username": "admin", "password": setup.admin_password,
                      "client_id": PUBLIC_CLIENT}
        device_auth = {"Authorization": aiohttp.encode_basic_auth(setup.device_id, setup.device_secret)}
        await hammer(lambda _: post(login_form), 2 * options.concurrency, options.concurrency, 200, Tally())
        await hammer(lambda _: post(login_form), options.logins, options.concurrency, 200, logins,
                     users[1].process.pid)
        client_form = {"grant_type": "client_credentials"}
        await hammer(lambda _: post(client_form, device_auth), 200, options.concurrency, 200, Tally())
        await hammer(lambda _: post(client_form, device_auth), options.requests, options.concurrency, 200,
                     client_tokens, users[1].process.pid)

    print(f"3. token endpoint of the users function over HTTP ({options.concurrency} in flight, {cores} cores)")
    print(f"  argon2id of the stored hash: m={found.memory_cost} KiB ({found.memory_cost / 1024:g} MiB), "
          f"t={found.time_cost}, p={found.parallelism} (OWASP's recommended minimum: {OWASP_MINIMUM})")
    for threads, rate in ((1, raw_one), (cores, raw_all)):
        label = f"raw limit: PasswordHasher.verify in process, {threads} thread{'s' if threads > 1 else ''}"
        print(f"  {label:<{WIDTH}} {rate:>9,.1f} verifies/s")
    report(f"grant_type=password logins ({options.logins:,})", logins, "logins/s")
    report("raw limit of signing: TokenIssuer.issue (RS256) in process", signing, "tokens/s")
    report(f"grant_type=client_credentials, SHA-256 secret ({options.requests:,})", client_tokens, "tokens/s")


async def run(dsns: dict[str, str], sink: str, log_dir: Path, options: argparse.Namespace) -> None:
    """Identity, the users function, the device, both ingest servers; then the three phases."""
    users_port = free_port()  # the issuer's URL is known before the users function starts
    issuer = f"http://127.0.0.1:{users_port}/api/v1/auth"
    admin_password = secrets.token_urlsafe(18)
    identity = await provision_identity(dsns["users"], issuer, log_dir / "keys", ["users", "ingest"],
                                        admin_password)
    device_id = f"bench-sensor-{uuid.uuid4().hex[:6]}"
    users_env = {"SMARTGRID_DSN_USERS": dsns["users"], **identity.function_environment("users")}
    async with AsyncExitStack() as stack:
        users = await stack.enter_async_context(function_server("users", FUNCTIONS / "users" / "main.py", sink,
                                                                users_env, log_dir, users_port))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        admin = UsersClient(issuer, ServiceToken(*identity.credentials(CLI_CLIENT)), session)
        device_secret = (await admin.register([{"device_id": device_id, "kind": "sensor"}]))[0]["client_secret"]
        setup = Setup(issuer, identity, sink, device_id, device_secret, admin_password, dsns["users"])

        ingest_env = identity.function_environment("ingest")
        with_auth, without_auth = await asyncio.gather(
            stack.enter_async_context(function_server("ingest", INGEST, sink, ingest_env, log_dir)),
            stack.enter_async_context(function_server("ingest-without-auth", Path(__file__).resolve(), sink,
                                                      {**ingest_env, DEVICE_ENV: device_id}, log_dir)))
        device_token = await ServiceToken(token_endpoint(issuer), device_id, device_secret).get()
        service_token = await ServiceToken(*identity.credentials(function_client("ingest"))).get()

        print(f"auth bench: {os.cpu_count()} cores shared by PostgreSQL, users, two ingest servers, a trivial "
              f"broker and this load generator; load average before the run {options.load_before:.1f} "
              f"(logs: {log_dir})")
        if options.load_before > 1:
            print("  (other programs keep this machine busy: rates and latencies below vary with them; the CPU per "
                  "call and the servers' wait for a CPU say how much)")
        auth_step = await token_checks(setup, device_token, service_token, options.checks)
        await ingest_requests(setup, device_token, with_auth, without_auth, auth_step, options)
        await token_endpoint_requests(setup, users, options)
        print(f"load average (1 min) at the end {os.getloadavg()[0]:.1f}")


def main() -> None:
    """PostgreSQL and this run's databases, the trivial broker, the run; everything stopped and dropped after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000, help="token checks in process, each kind (default 5000)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="HTTP requests per ingest pass and client_credentials tokens (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight (default 16)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of the ingest passes (default 4)")
    parser.add_argument("--logins", type=int, default=300, help="password-grant logins (default 300)")
    parser.add_argument("--argon2", type=int, default=40,
                        help="PasswordHasher.verify calls per thread of the raw limit (default 40)")
    options = parser.parse_args()
    options.load_before = os.getloadavg()[0]  # other programs' load: this run has not started anything yet
    settings = Settings.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    log_dir = Path(tempfile.mkdtemp(prefix="smartgrid-auth-bench-"))
    sink = Child("broker", [sys.executable, str(REPO / "bench" / "eventing_bench.py"), "--role", "subscriber"],
                 log_dir / "broker.log")
    try:
        sink_url = sink.wait_ready(30)
        with postgres_server(settings.pg_dsn, log_dir) as admin_dsn:
            try:
                dsns = provision(admin_dsn, prefix)
                aio.run(run(dsns, sink_url, log_dir, options))
            finally:
                drop(admin_dsn, prefix)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
