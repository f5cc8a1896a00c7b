"""RequestAuthentication: JWTs checked at the destination workload with Istio's semantics.

For the workload a request goes to, every `jwtRules` entry of the RequestAuthentications selecting it
is a provider. The token is taken from `Authorization: Bearer <token>` or the `access_token` query
parameter (or the rule's `fromHeaders` / `fromParams`):
- no token: the request goes on without a request principal (AuthorizationPolicy decides);
- a token whose issuer no provider has, or that fails verification (signature by a key of the
  provider's JWKS, `exp`/`nbf` with 60 s of skew, `aud` among `audiences` when listed): 401 with
  Envoy's body `Jwt verification fails`;
- a valid token: request principal `<iss>/<sub>`, its claims for `request.auth.claims[...]`.
`forwardOriginalToken: false` (the default) removes the token's header before the request goes on.

Locally the issuer and JWKS differ from the cluster's: a rule whose `jwksUri` names a cluster Service
that runs locally fetches its keys at that Service's local URL (same path), and when those are the
running issuer's keys, the rule stands for the running issuer (tokens carry its `iss`) while request
principals keep the manifest's issuer, as policies name it. Verified tokens are cached until they expire.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from local.gateway.selectors import Selection, Workload, parse_selection
from local.gateway.spec import Node
from shared.auth.jwks import RemoteJwks
from shared.auth.tokens import InvalidToken

log = logging.getLogger("smartgrid.gateway")

CLOCK_SKEW_S = 60  # Envoy's jwt_authn default
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_DEFAULT_HEADERS = (("authorization", "Bearer "),)
_DEFAULT_PARAMS = ("access_token",)
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class JwtRule:
    """One entry of `jwtRules`, as written."""

    issuer: str
    jwks_uri: str
    audiences: tuple[str, ...] = ()
    forward: bool = False
    headers: tuple[tuple[str, str], ...] = _DEFAULT_HEADERS
    params: tuple[str, ...] = _DEFAULT_PARAMS
    where: str = ""


@dataclass(frozen=True)
class RequestAuthentication:
    name: str
    selection: Selection
    rules: tuple[JwtRule, ...]
    origin: str


def parse_request_authentication(node: Node, name: str, namespace: str) -> RequestAuthentication:
    spec = node.fields(("selector", "jwtRules"))
    rules = []
    for item in spec["jwtRules"].items() if "jwtRules" in spec else ():
        fields = item.fields(("issuer", "jwksUri", "audiences", "forwardOriginalToken", "fromHeaders", "fromParams"))
        if "issuer" not in fields or "jwksUri" not in fields:
            raise item.error("expected issuer and jwksUri (inline jwks is not supported by the local gateway)")
        headers = _DEFAULT_HEADERS
        params = _DEFAULT_PARAMS
        if "fromHeaders" in fields or "fromParams" in fields:
            headers = tuple(_header_location(entry) for entry in fields["fromHeaders"].items()) \
                if "fromHeaders" in fields else ()
            params = fields["fromParams"].texts() if "fromParams" in fields else ()
        rules.append(JwtRule(
            issuer=fields["issuer"].text().rstrip("/"),
            jwks_uri=fields["jwksUri"].text(),
            audiences=fields["audiences"].texts() if "audiences" in fields else (),
            forward=fields["forwardOriginalToken"].flag() if "forwardOriginalToken" in fields else False,
            headers=headers, params=params, where=item.where,
        ))
    return RequestAuthentication(name, parse_selection(spec.get("selector"), namespace), tuple(rules), node.origin)


def _header_location(node: Node) -> tuple[str, str]:
    fields = node.fields(("name", "prefix"))
    prefix = fields["prefix"].value if "prefix" in fields else ""
    if not isinstance(prefix, str):
        raise fields["prefix"].error(f"expected a string, found {prefix!r}")
    return fields["name"].text().lower(), prefix


@dataclass(frozen=True)
class RequestAuth:
    """A verified token: what AuthorizationPolicy conditions read."""

    principal: str
    claims: Mapping[str, Any]
    audiences: tuple[str, ...]
    presenter: str | None


class JwtFailure(Exception):
    """A present token that does not verify (answered 401 `Jwt verification fails`)."""


@dataclass(frozen=True)
class Provider:
    """A jwtRule as it runs locally: the issuer its tokens carry, and its keys."""

    rule: JwtRule
    issuer: str
    jwks: RemoteJwks

    async def verify(self, token: str, header: dict[str, Any]) -> RequestAuth:
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in ALGORITHMS or not isinstance(kid, str):
            raise JwtFailure(f"expected an asymmetric alg and a kid, found alg {algorithm!r} kid {kid!r}")
        try:
            key = await self.jwks.key_for(kid)
            claims = jwt.decode(
                token, key, algorithms=[algorithm], issuer=self.issuer,
                audience=list(self.rule.audiences) or None, leeway=CLOCK_SKEW_S,
                options={"verify_aud": bool(self.rule.audiences), "require": []},
            )
        except (InvalidToken, jwt.PyJWTError) as error:
            raise JwtFailure(str(error) or type(error).__name__) from None
        audiences = claims.get("aud", ())
        return RequestAuth(
            principal=f"{self.rule.issuer}/{claims.get('sub', '')}",
            claims=claims,
            audiences=(audiences,) if isinstance(audiences, str) else tuple(map(str, audiences)),
            presenter=claims.get("azp"),
        )


@dataclass(frozen=True)
class Outcome:
    """What authentication made of a request: its principal (or None), a failure, headers to strip."""

    auth: RequestAuth | None = None
    failure: str | None = None
    strip: tuple[str, ...] = ()


NO_TOKEN = Outcome()


class Authenticator:
    """The providers of one workload."""

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self._by_issuer = {provider.issuer: provider for provider in providers}
        headers: dict[str, list[str]] = {}
        for provider in providers:
            for name, prefix in provider.rule.headers:
                headers.setdefault(name, [])
                if prefix not in headers[name]:
                    headers[name].append(prefix)
        self._headers = tuple((name, tuple(prefixes)) for name, prefixes in headers.items())
        self._params = tuple(dict.fromkeys(p for provider in providers for p in provider.rule.params))
        self._cache: OrderedDict[str, tuple[Outcome, float, float]] = OrderedDict()  # token -> outcome, nbf, exp

    async def authenticate(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Outcome:
        if not self.providers:
            return NO_TOKEN
        found = self._token(headers, query)
        if found is None:
            return NO_TOKEN
        token, header_name = found
        cached = self._cache.get(token)
        if cached is not None:
            outcome, not_before, expiry = cached
            if not_before - CLOCK_SKEW_S <= time.time() <= expiry + CLOCK_SKEW_S:
                self._cache.move_to_end(token)
                return outcome
            del self._cache[token]
        try:
            header = jwt.get_unverified_header(token)
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
        except jwt.PyJWTError as error:
            return Outcome(failure=f"the token does not parse: {error}")
        provider = self._by_issuer.get(issuer.rstrip("/"))
        if provider is None:
            return Outcome(failure=f"issuer {issuer!r} is not configured")
        try:
            auth = await provider.verify(token, header)
        except JwtFailure as failure:
            return Outcome(failure=str(failure))
        strip = (header_name,) if header_name and not provider.rule.forward else ()
        outcome = Outcome(auth, None, strip)
        expiry, not_before = auth.claims.get("exp"), auth.claims.get("nbf", 0)
        if isinstance(expiry, (int, float)) and isinstance(not_before, (int, float)):
            self._cache[token] = (outcome, float(not_before), float(expiry))
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return outcome

    def _token(self, headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, str | None] | None:
        for name, prefixes in self._headers:
            value = headers.get(name)
            if value is None:
                continue
            for prefix in prefixes:
                if value.startswith(prefix) and value[len(prefix):].strip():
                    return value[len(prefix):].strip(), name
        for name in self._params:
            value = query.get(name)
            if value:
                return value, None
        return None


def local_url(url: str, service_urls: Mapping[str, str]) -> str:
    """`url` with a cluster Service's host (`<name>.<ns>.svc[.cluster.local]`) replaced by its local URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    for suffix in (".svc.cluster.local", ".svc"):
        if host.endswith(suffix):
            service = host.removesuffix(suffix).split(".")[0]
            if service in service_urls:
                tail = parts.path + (f"?{parts.query}" if parts.query else "")
                return service_urls[service].rstrip("/") + tail
    return url


def providers_for(authentications: list[RequestAuthentication], workload: Workload,
                  service_urls: Mapping[str, str], running_issuer: str | None,
                  jwks_cache: dict[str, RemoteJwks]) -> list[Provider]:
    """The providers of the RequestAuthentications selecting `workload`, mapped to what runs locally."""
    providers = []
    for authentication in authentications:
        if not authentication.selection.applies_to(workload):
            continue
        for rule in authentication.rules:
            jwks_url = local_url(rule.jwks_uri, service_urls)
            issuer = rule.issuer
            if running_issuer is not None and jwks_url == f"{running_issuer}/jwks":
                issuer = running_issuer
            elif jwks_url == rule.jwks_uri:
                log.warning("%s: jwksUri %s names no Service running locally: fetched as is", rule.where,
                            rule.jwks_uri)
            if jwks_url not in jwks_cache:
                jwks_cache[jwks_url] = RemoteJwks(jwks_url, timeout_s=30.0)
            providers.append(Provider(rule, issuer, jwks_cache[jwks_url]))
    return providers
