"""A local gateway on the test mesh (fixtures/mesh.yaml) in this process: two tiny backends, `blue` and
`green`, that echo what reached them, and `users`, serving the JWKS of a key ring of this session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from local import aio
from local.gateway.manifests import load_manifests
from local.gateway.server import Gateway, GatewayOptions
from local.servers.process import free_port
from shared.auth.keys import KeyRing, ensure_key
from shared.users.api import AUTH_PREFIX
from tests.identity import Identity

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MESH = FIXTURES / "mesh.yaml"
NO_LIMITS = FIXTURES / "no-limits.yaml"


class Backend:
    """An HTTP service answering every request with JSON naming itself, the path and the headers it got;
    `/fail-twice` answers 503 twice per `x-request-key`, then 200; `/slow` waits 2 s; `/cached/...` answers the
    same body every time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = ""
        self.failures: dict[str, int] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.url = await aio.serve(app, shutdown_timeout=0.5)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/fail-twice":
            key = request.headers.get("x-request-key", "")
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] <= 2:
                return web.json_response({"service": self.name, "failure": self.failures[key]}, status=503)
        if request.path == "/slow":
            await asyncio.sleep(2)
        if request.path.startswith("/cached"):  # the same answer every time
            return web.json_response({"service": self.name, "path": request.path})
        return web.json_response({"service": self.name, "path": request.path_qs, "method": request.method,
                                  "headers": dict(request.headers), "body": len(body)})


def jwks_app(keys: KeyRing) -> web.Application:
    async def jwks(_request: web.Request) -> web.Response:
        return web.json_response(keys.jwks())

    app = web.Application()
    app.router.add_get(f"{AUTH_PREFIX}/jwks", jwks)
    return app


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture(scope="session")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict]:
    """The backends' URLs by Service name, and an Identity issuing tokens of the mesh's (local) issuer."""
    keys_dir = tmp_path_factory.mktemp("gateway-keys")
    ensure_key(keys_dir)
    keys = KeyRing(keys_dir)
    backends = {name: Backend(name) for name in ("blue", "green")}
    for backend in backends.values():
        await backend.start()
    runner, users_url = await aio.serve(jwks_app(keys), shutdown_timeout=0.5)
    issuer = users_url + AUTH_PREFIX
    try:
        gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        yield {"urls": {**{name: b.url for name, b in backends.items()}, "users": users_url, "gone": gone},
               "backends": backends, "identity": Identity(issuer, keys, {}), "issuer": issuer}
    finally:
        await runner.cleanup()
        for backend in backends.values():
            await backend.stop()


@pytest.fixture
async def start_gateway(mesh: dict, redis_url: str) -> AsyncIterator[GatewayFactory]:
    """Starts gateways on the test mesh (or `manifests`), with options overridden by keyword; stops them after."""
    async with AsyncExitStack() as stack:
        async def start(path: Path = MESH, **overrides) -> Gateway:
            options = {"service_urls": mesh["urls"], "issuer": mesh["issuer"], "redis_url": redis_url,
                       "redis_prefix": f"test-gateway-{uuid.uuid4().hex[:8]}:", "rate_limits": NO_LIMITS,
                       **overrides}
            gateway = Gateway(load_manifests(path), GatewayOptions(**options))
            stack.push_async_callback(gateway.stop)
            await gateway.start()
            return gateway

        yield start


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
