"""The local API gateway: Istio's ingress gateway and the destination's sidecar, in one aiohttp server.

Per request, in the order the cluster's proxies apply them:
1. the path, normalised (matching.py); a request target that is no absolute path: 400;
2. at the ingress gateway: JWT of the RequestAuthentications selecting it (401 `Jwt verification
   fails`), its AuthorizationPolicies (403 `RBAC: access denied`), then the route (no route: 404 JSON
   naming `path`), the CORS preflight (cors.py), the rate limit (429, ratelimit.py: caller kind and
   subject from the token verified here, else `anonymous` by client address);
3. at the destination workload (the route's destination Service, picked by weight): its JWT rules and
   its policies, on the path after the rewrite, with the gateway's identity as source;
4. the body, read up to SMARTGRID_GATEWAY_MAX_BODY_BYTES (413 naming `body`) within the client timeout;
5. the destination, through the route's rewrite, timeout and retries (proxy.py);
6. the answer: the route's header operations (`headers.response.set`: Cache-Control), ETag and 304 on
   a cacheable GET (edge.py), CORS headers, rate limit headers, and the security headers on every answer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from multidict import CIMultiDict

from local.gateway import edge, ratelimit
from local.gateway.authn import Authenticator, Outcome, RequestAuth, providers_for
from local.gateway.authz import DENIED_BODY, Context, Policy, decide, policies_for
from local.gateway.cors import is_preflight
from local.gateway.manifests import Manifests
from local.gateway.matching import BadPath, normalize_path
from local.gateway.proxy import HOP_BY_HOP, Upstream, UpstreamFailure
from local.gateway.routing import HttpRoute, RouteTable
from local.gateway.selectors import GATEWAY_NAMESPACE, Workload
from local.gateway.spec import GatewayManifestError
from shared.auth.jwks import RemoteJwks
from shared.auth.tokens import KeysUnavailable
from shared.config import ConfigError

log = logging.getLogger("smartgrid.gateway")

GATEWAY_PRINCIPAL = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
JWT_FAILED_BODY = "Jwt verification fails"
CALLER_KINDS = ("device", "user", "service")
_EXTRA = web.RequestKey("smartgrid.gateway.extra", CIMultiDict)
DEFAULT_RATE_LIMITS = Path(ratelimit.__file__).with_name("rate-limits.yaml")


@dataclass(frozen=True)
class GatewayOptions:
    """What the gateway needs besides the manifests."""

    service_urls: Mapping[str, str]
    issuer: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "smartgrid:"
    rate_limits: Path | None = None
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 8190
    client_timeout_s: float = 10.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class _Proxy:
    """A workload's proxy (the gateway's own, or a destination's sidecar): JWT rules and policies."""

    authenticator: Authenticator
    policies: list[Policy]
    url: str = ""

    def allows(self, context: Context) -> bool:
        return decide(self.policies, context) if self.policies else True


@dataclass
class _Limits:
    limiter: ratelimit.RateLimiter | None = None
    redis: aioredis.Redis | None = None


class Gateway:
    """Serves the VirtualServices bound to the manifests' Gateways (see the module's docstring)."""

    def __init__(self, manifests: Manifests, options: GatewayOptions) -> None:
        self.options = options
        self.url = ""
        self.routes = RouteTable(tuple(manifests.bound()))
        jwks: dict[str, RemoteJwks] = {}
        gateway_labels: dict[str, str] = {}
        for resource in manifests.gateways:
            gateway_labels.update(resource.labels)
        self._min_tls = next((g.min_tls for g in manifests.gateways if g.min_tls), None)
        edge_workload = Workload(GATEWAY_NAMESPACE, gateway_labels)
        self._edge = self._proxy_of(manifests, edge_workload, jwks)
        self._sidecars: dict[str, _Proxy] = {}
        for route in self.routes.all_routes():
            for destination in route.destinations:
                if destination.service not in options.service_urls:
                    raise GatewayManifestError(
                        f"{destination.where}: expected a Knative Service that runs locally "
                        f"({', '.join(sorted(options.service_urls))}), found {destination.service!r}")
                if destination.service not in self._sidecars:
                    sidecar = self._proxy_of(manifests, Workload.service(destination.service, destination.namespace),
                                             jwks)
                    sidecar.url = options.service_urls[destination.service].rstrip("/")
                    self._sidecars[destination.service] = sidecar
        self._upstream = Upstream()
        self._limits = _Limits()
        try:
            self._rate_config = ratelimit.load_config(options.rate_limits or DEFAULT_RATE_LIMITS)
        except ratelimit.RateLimitConfigError as error:
            raise ConfigError(f"SMARTGRID_GATEWAY_RATE_LIMITS: {error}") from None
        self._security = edge.security_headers(options.tls_cert is not None)
        self._runner: web.AppRunner | None = None

    def _proxy_of(self, manifests: Manifests, workload: Workload, jwks: dict[str, RemoteJwks]) -> _Proxy:
        providers = providers_for(manifests.authentications, workload, self.options.service_urls,
                                  self.options.issuer, jwks)
        return _Proxy(Authenticator(providers), policies_for(manifests.policies, workload))

    async def start(self) -> str:
        """Listen (host:port, 0: a free port); return the base URL."""
        options = self.options
        await self._upstream.start()
        if options.redis_url is not None:
            self._limits.redis = aioredis.Redis.from_url(options.redis_url)
            self._limits.limiter = ratelimit.RateLimiter(self._limits.redis, self._rate_config,
                                                         prefix=options.redis_prefix)
        else:
            log.warning("no Redis: the gateway enforces no rate limits")
        app = web.Application(client_max_size=options.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_response_prepare.append(self._decorate)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0,
                                     keepalive_timeout=options.client_timeout_s,
                                     max_line_size=options.max_header_bytes, max_field_size=options.max_header_bytes)
        await self._runner.setup()
        context = self._tls_context()
        site = web.TCPSite(self._runner, options.host, options.port, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if context else 'http'}://{options.host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self._upstream.close()
        if self._limits.redis is not None:
            await self._limits.redis.aclose()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.options.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        context.minimum_version = ssl.TLSVersion.TLSv1_3 if self._min_tls == "TLSV1_3" else ssl.TLSVersion.TLSv1_2
        return context

    # --- the request pipeline ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        extra: CIMultiDict[str] = CIMultiDict()
        request[_EXTRA] = extra
        return await self._answer(request, extra)

    async def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer, also one an edge helper sends itself: CORS and rate limit headers, security headers."""
        response.headers.update(request.get(_EXTRA, {}))
        response.headers.update(self._security)

    async def _answer(self, request: web.Request, extra: CIMultiDict[str]) -> web.StreamResponse:
        try:
            path, query = normalize_path(request.raw_path)
        except BadPath as error:
            return _json(400, "bad request", str(error), "path")
        headers, params = request.headers, request.query
        try:
            edge_auth = await self._edge.authenticator.authenticate(headers, params)
            if edge_auth.failure is not None:
                return self._jwt_failed(request, edge_auth)
            if self._edge.policies and not self._edge.allows(
                    Context(request.method, path, headers, edge_auth.auth, "", "")):
                return web.Response(status=403, text=DENIED_BODY)
            found = self.routes.find(request.host, request.method, path, headers, params)
            if found is None:
                return _json(404, "no route", f"expected a path that a route of the VirtualServices matches, "
                                             f"found {request.method} {path}", "path")
            route, condition = found
            answer = await self._routed(request, route, path, query, condition, edge_auth, extra)
        except KeysUnavailable as error:
            return _json(503, "jwks unavailable", f"expected the issuer's keys, found none: {error}", "authorization")
        return answer

    async def _routed(self, request: web.Request, route: HttpRoute, path: str, query: str, condition,
                      edge_auth: Outcome, extra: CIMultiDict[str]) -> web.StreamResponse:
        origin = request.headers.get("origin")
        cors = route.cors if origin is not None and route.cors is not None and route.cors.allows(origin) else None
        if route.cors is not None and is_preflight(request.method, request.headers):
            if cors is not None:
                return self._finish(route, web.Response(status=200, headers=cors.preflight_headers(origin)))
            if not route.cors.forward_unmatched:
                return self._finish(route, web.Response(status=200))
        if cors is not None:
            extra.update(cors.response_headers(origin))
        decision = await self._rate_limit(request, route, edge_auth.auth)
        if decision is not None:
            extra.update(ratelimit.headers(decision))
            if not decision.allowed:
                return self._finish(route, _json(429, "rate limited", f"expected at most {decision.limit} requests "
                                                 f"per caller on route {route.name} now, found more; retry after "
                                                 f"{extra.get('Retry-After', '1')} s", "caller"))
        destination = route.pick()
        sidecar = self._sidecars[destination.service]
        upstream_path = route.rewrite(path, condition)
        auth = await sidecar.authenticator.authenticate(request.headers, request.query)
        if auth.failure is not None:
            return self._finish(route, self._jwt_failed(request, auth))
        context = Context(request.method, upstream_path, request.headers, auth.auth, GATEWAY_PRINCIPAL,
                          GATEWAY_NAMESPACE)
        if not sidecar.allows(context):
            return self._finish(route, web.Response(status=403, text=DENIED_BODY))
        try:
            edge.check_content_length(request.headers, self.options.max_body_bytes)
            async with asyncio.timeout(self.options.client_timeout_s):
                body = await edge.read_capped(request.content, self.options.max_body_bytes)
        except edge.BodyTooLarge as error:
            route.response_headers.apply(request[_EXTRA])
            return await edge.refuse_too_large(request, error)
        except ValueError as error:
            return _json(400, "bad request", str(error), "content-length")
        except TimeoutError:
            response = _json(408, "request timeout", f"expected the body within {self.options.client_timeout_s} s, "
                                                     "found it still arriving", "body")
            response.force_close()
            return response
        forwarded = self._forwarded_headers(request, route, path, upstream_path, edge_auth, auth)
        try:
            answer = await self._upstream.send(request.method, sidecar.url + upstream_path + query, forwarded, body,
                                               retries=route.retries, timeout_s=route.timeout_s)
        except UpstreamFailure as failure:
            return self._finish(route, _json(failure.status, str(failure).split(".")[0], str(failure), "destination"))
        headers = answer.headers
        route.response_headers.apply(headers)
        status, payload = answer.status, answer.body
        if request.method == "GET":
            got = edge.conditional_get(request.headers, status, headers, payload)
            status, headers, payload = got.status, got.headers, got.body
        return web.Response(status=status, headers=headers, body=payload)

    def _forwarded_headers(self, request: web.Request, route: HttpRoute, path: str, upstream_path: str,
                           edge_auth: Outcome, auth: Outcome) -> CIMultiDict[str]:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        for name in (*edge_auth.strip, *auth.strip):
            headers.popall(name, None)
        address = request.remote or ""
        previous = headers.get("x-forwarded-for")
        headers["X-Forwarded-For"] = f"{previous}, {address}" if previous else address
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Envoy-External-Address"] = address
        headers.setdefault("X-Request-Id", str(uuid.uuid4()))
        if upstream_path != path:
            headers["X-Envoy-Original-Path"] = path
        if route.authority is not None:
            headers["Host"] = route.authority
        route.request_headers.apply(headers)
        return headers

    async def _rate_limit(self, request: web.Request, route: HttpRoute,
                          auth: RequestAuth | None) -> ratelimit.Decision | None:
        limiter = self._limits.limiter
        if limiter is None:
            return None
        kind = auth.claims.get("smartgrid_kind") if auth is not None else None
        if kind in CALLER_KINDS and isinstance(auth.claims.get("sub"), str):
            caller = auth.claims["sub"]
        else:
            kind, caller = "anonymous", request.remote or "unknown"
        return await limiter.check([("caller_kind", kind), ("route", route.name), ("caller", caller)])

    @staticmethod
    def _finish(route: HttpRoute, response: web.Response) -> web.Response:
        """A response of the gateway's own on `route`: with the route's response header operations."""
        route.response_headers.apply(response.headers)
        return response

    @staticmethod
    def _jwt_failed(request: web.Request, outcome: Outcome) -> web.Response:
        log.info("%s %s: token refused: %s", request.method, request.path, outcome.failure)
        realm = f"{request.scheme}://{request.host}{request.path}"
        return web.Response(status=401, text=JWT_FAILED_BODY,
                            headers={"WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token"'})


def _json(status: int, error: str, message: str, field_name: str) -> web.Response:
    return web.json_response({"error": error, "message": message, "field": field_name}, status=status)
