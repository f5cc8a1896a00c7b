"""The local API gateway's cost: the same request through the gateway and straight to the function, same run.

Starts `smartgrid up` (a state folder of its own; servers reused as `up` reuses them: SMARTGRID_PG_DSN,
SMARTGRID_KAFKA_BOOTSTRAP, SMARTGRID_REDIS_URL), reads its endpoints, mints a viewer's token with the
platform's own signing key (as tests/identity.py does), then sends `GET /api/v1/alerts?limit=1` with it,
in `--rounds` alternating rounds, first one at a time (`--latency-requests` per round: the latency the
gateway adds, without queueing), then `--concurrency` in flight (`--requests` per round: throughput):
- direct: to the alerts function's local URL (its activator, what `up` lists as `alerts`);
- gateway: to `<gateway>/api/v1/alerts?limit=1`: route match, JWT at the gateway and at the destination
  (verified once, then the verified-token cache), the rate limit (one Redis round trip: the limits are
  raised so that none refuses, `--limits` to use others), the authorization policies, the proxy hop over
  a pooled keep-alive connection, ETag, security headers.
Printed per phase and target: requests/s, p50 and p99 latency; then the p50 overhead (gateway - direct, ms)
and the throughput ratio (gateway / direct), against the goals (overhead < 1 ms, ratio >= 70 %); with
requests in flight, latency is mostly queueing (about in-flight x time per request of the busiest process). The gateway
runs in `up`'s process beside the activators, so on a small machine both targets share that process's
CPU. Figures only, no assertion. `.venv/bin/python bench/gateway_bench.py --help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp
from yarl import URL

from shared.auth.keys import KeyRing
from shared.auth.tokens import TokenGrant, TokenIssuer

SMARTGRID = str(Path(sys.executable).with_name("smartgrid"))
PATH = "/api/v1/alerts?limit=1"
HIGH_LIMITS = """
domain: bench
descriptors:
  - key: caller_kind
    value: user
    descriptors:
      - key: route
        descriptors:
          - key: caller
            rate_limit: {unit: second, requests_per_unit: 1000000}
"""


def start_platform(state_dir: Path, limits: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {**os.environ, "SMARTGRID_STATE_DIR": str(state_dir), "SMARTGRID_GATEWAY_RATE_LIMITS": str(limits)}
    log = open(state_dir / "up.log", "wb")  # noqa: SIM115 (kept open while the platform runs)
    process = subprocess.Popen([SMARTGRID, "up", "--idle-seconds", "600"], stdout=subprocess.PIPE, stderr=log, env=env)
    endpoints: dict[str, str] = {}
    assert process.stdout is not None
    while not {"gateway", "alerts", "auth"} <= endpoints.keys():
        line = process.stdout.readline().decode()
        if not line:
            raise SystemExit(f"smartgrid up ended early; see {state_dir / 'up.log'}")
        name, _, url = line.strip().partition(" ")
        endpoints[name] = url
    return process, endpoints


async def hammer(url: str, headers: dict[str, str], count: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of `count` GETs of `url`, `concurrency` in flight on keep-alive connections."""
    latencies: list[float] = []
    remaining = count
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                began = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"GET {url}: expected 200, found {response.status}")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - began), latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(endpoints: dict[str, str], state_dir: Path, options: argparse.Namespace) -> None:
    keys = KeyRing(state_dir / "auth" / "keys")
    token = TokenIssuer(keys, endpoints["auth"], lifetime_s=3600).issue(TokenGrant("bench-viewer", "user", ("viewer",),
                                                                                   "bench"))
    headers = {"Authorization": f"Bearer {token}"}
    targets = {"direct": str(URL(endpoints["alerts"]).origin()) + PATH, "gateway": endpoints["gateway"] + PATH}
    for url in targets.values():  # warm up: the function's cold start, the JWKS, pooled connections
        await hammer(url, headers, options.warmup, options.concurrency)
    print(f"GET {PATH} with a viewer's token ({os.cpu_count()} cores); direct = the alerts function's local URL")
    for concurrency, count in ((1, options.latency_requests), (options.concurrency, options.requests)):
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in targets}
        for _ in range(options.rounds):
            for name, url in targets.items():
                rate, latencies = await hammer(url, headers, count, concurrency)
                results[name][0].append(rate)
                results[name][1].extend(latencies)
        print(f"{concurrency} in flight, {options.rounds} alternating rounds of {count} per target:")
        summary = {}
        for name, (rates, latencies) in results.items():
            rate = statistics.median(rates)
            p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
            summary[name] = (rate, p50, p99)
            print(f"  {name:8} {rate:8.0f} requests/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
                  f"(rounds: {', '.join(f'{r:.0f}' for r in rates)} requests/s)")
        overhead = summary["gateway"][1] - summary["direct"][1]
        ratio = summary["gateway"][0] / summary["direct"][0]
        print(f"  gateway: p50 overhead {overhead:+.2f} ms (goal < 1 ms), throughput {ratio:.0%} of direct "
              f"(goal >= 70 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000,
                        help="requests per target and round, `--concurrency` in flight")
    parser.add_argument("--latency-requests", type=int, default=500,
                        help="requests per target and round one at a time (latency without queueing)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--limits", type=Path, help="rate limits of the gateway (default: none refusing)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as folder:
        state_dir = Path(folder)
        state_dir.chmod(0o711)
        limits = options.limits
        if limits is None:
            limits = state_dir / "limits.yaml"
            limits.write_text(HIGH_LIMITS)
        process, endpoints = start_platform(state_dir, limits)
        try:
            asyncio.run(run(endpoints, state_dir, options))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


if __name__ == "__main__":
    main()
