"""VirtualService http routes, matched like Envoy: in order, the first route with a matching condition wins.

A route matches when any of its `match` conditions holds (no `match`: every request); a condition holds
when all its parts do: `uri`, `method` (StringMatch), `headers` (each named header, case-insensitive
name), `queryParams`, with `ignoreUriCase`. Its destinations are picked by `weight` (relative weights;
none given: equal shares). `rewrite.uri` replaces the matched prefix (an `exact` match: the whole path;
no `uri` condition: the leading `/`) and keeps the query; `rewrite.authority` sets the Host sent upstream. A Host naming one of a VirtualService's
`hosts` takes that VirtualService's routes; any other Host (127.0.0.1 locally) takes the routes of
every VirtualService bound to a Gateway, in file order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from multidict import CIMultiDict

from local.gateway.cors import CorsPolicy, parse_cors
from local.gateway.matching import StringMatch
from local.gateway.retries import RetryPolicy, parse_retries
from local.gateway.spec import Node

_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")
_RESERVED_HEADERS = ("uri", "scheme", "method", "authority")


@dataclass(frozen=True)
class Destination:
    """A Knative Service a route sends to, and its share."""

    service: str
    namespace: str
    weight: int
    where: str

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class RouteMatch:
    """One `match` condition of a route."""

    uri: StringMatch | None = None
    method: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()
    query: tuple[tuple[str, StringMatch], ...] = ()

    def holds(self, method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return ((self.uri is None or self.uri.matches(path))
                and (self.method is None or self.method.matches(method))
                and all(match.matches(headers.get(name)) for name, match in self.headers)
                and all(match.matches(query.get(name)) for name, match in self.query))

    @property
    def rewrite_prefix(self) -> str:
        if self.uri is None:
            return "/"
        return self.uri.exact if self.uri.exact is not None else self.uri.prefix or ""


@dataclass(frozen=True)
class HeaderOps:
    """`set`, `add` and `remove` of a route's request or response headers."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def apply(self, headers: CIMultiDict[str]) -> None:
        for name in self.remove:
            headers.popall(name, None)
        for name, value in self.set:
            headers[name] = value
        for name, value in self.add:
            headers.add(name, value)

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True)
class HttpRoute:
    """One entry of a VirtualService's `http`."""

    name: str
    where: str
    matches: tuple[RouteMatch, ...]
    destinations: tuple[Destination, ...]
    rewrite_uri: str | None = None
    authority: str | None = None
    timeout_s: float | None = None
    retries: RetryPolicy = field(default_factory=lambda: parse_retries(None))
    cors: CorsPolicy | None = None
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()

    def match(self, method: str, path: str, headers: Mapping[str, str],
              query: Mapping[str, str]) -> RouteMatch | None:
        """The first condition that holds (no conditions: an empty one), or None."""
        if not self.matches:
            return RouteMatch()
        for condition in self.matches:
            if condition.holds(method, path, headers, query):
                return condition
        return None

    def pick(self) -> Destination:
        if len(self.destinations) == 1:
            return self.destinations[0]
        return random.choices(self.destinations, weights=[d.weight for d in self.destinations])[0]

    def rewrite(self, path: str, condition: RouteMatch) -> str:
        if self.rewrite_uri is None:
            return path
        return self.rewrite_uri + path[len(condition.rewrite_prefix):]


@dataclass(frozen=True)
class VirtualService:
    name: str
    namespace: str
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]
    routes: tuple[HttpRoute, ...]
    origin: str


@dataclass(frozen=True)
class RouteTable:
    """The routes of the VirtualServices bound to the gateway, by host."""

    services: tuple[VirtualService, ...]

    def find(self, host: str, method: str, path: str, headers: Mapping[str, str],
             query: Mapping[str, str]) -> tuple[HttpRoute, RouteMatch] | None:
        name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
        chosen = [vs for vs in self.services if any(_host_matches(pattern, name) for pattern in vs.hosts)] \
            or self.services
        for service in chosen:
            for route in service.routes:
                condition = route.match(method, path, headers, query)
                if condition is not None:
                    return route, condition
        return None

    def all_routes(self) -> list[HttpRoute]:
        return [route for service in self.services for route in service.routes]


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return False  # the wildcard host is every VirtualService's: the local default already
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern.lower()


def parse_virtual_service(node: Node, name: str, namespace: str) -> VirtualService:
    spec = node.fields(("hosts", "gateways", "http"))
    hosts = spec["hosts"].texts() if "hosts" in spec else ()
    if not hosts:
        raise node.error("expected hosts with at least one host, found none")
    gateways = spec["gateways"].texts() if "gateways" in spec else ("mesh",)
    routes = tuple(_parse_route(item, index, name, namespace) for index, item in
                   enumerate(spec["http"].items() if "http" in spec else ()))
    return VirtualService(name, namespace, hosts, gateways, routes, node.origin)


def _parse_route(node: Node, index: int, service: str, namespace: str) -> HttpRoute:
    fields = node.fields(("name", "match", "route", "rewrite", "timeout", "retries", "corsPolicy", "headers"))
    matches = tuple(_parse_match(item) for item in fields["match"].items()) if "match" in fields else ()
    if "route" not in fields or not fields["route"].items():
        raise node.error("expected route with at least one destination, found none")
    destinations = _parse_destinations(fields["route"], namespace)
    rewrite = authority = None
    if "rewrite" in fields:
        parts = fields["rewrite"].fields(("uri", "authority"))
        rewrite = parts["uri"].text() if "uri" in parts else None
        authority = parts["authority"].text() if "authority" in parts else None
        if rewrite is not None and any(m.uri is not None and m.uri.regex is not None for m in matches):
            raise parts["uri"].error("not supported by the local gateway on a route matched by a uri regex")
    request_ops, response_ops = _parse_headers(fields["headers"]) if "headers" in fields else (HeaderOps(), HeaderOps())
    return HttpRoute(
        name=fields["name"].text() if "name" in fields else f"{service}.{index}",
        where=f"{node.origin}: {node.path}",
        matches=matches,
        destinations=destinations,
        rewrite_uri=rewrite,
        authority=authority,
        timeout_s=(fields["timeout"].duration() or None) if "timeout" in fields else None,
        retries=parse_retries(fields.get("retries")),
        cors=parse_cors(fields["corsPolicy"]) if "corsPolicy" in fields else None,
        request_headers=request_ops,
        response_headers=response_ops,
    )


def _parse_match(node: Node) -> RouteMatch:
    fields = node.fields(("name", "uri", "method", "headers", "queryParams", "ignoreUriCase"))
    ignore_case = fields["ignoreUriCase"].flag() if "ignoreUriCase" in fields else False
    headers = []
    for name, match in (fields["headers"].fields(_any_key(fields["headers"])) if "headers" in fields else {}).items():
        if name.lower() in _RESERVED_HEADERS:
            raise match.error("not supported by the local gateway (Istio ignores uri, scheme, method and authority "
                              "here: match them with uri or method)")
        headers.append((name.lower(), StringMatch.parse(match)))
    query = [(name, StringMatch.parse(match)) for name, match in
             (fields["queryParams"].fields(_any_key(fields["queryParams"])) if "queryParams" in fields else {}).items()]
    return RouteMatch(
        uri=StringMatch.parse(fields["uri"], ignore_case=ignore_case) if "uri" in fields else None,
        method=StringMatch.parse(fields["method"]) if "method" in fields else None,
        headers=tuple(headers),
        query=tuple(query),
    )


def _any_key(node: Node) -> tuple[str, ...]:
    return tuple(node.value) if isinstance(node.value, dict) else ()


def _parse_destinations(node: Node, namespace: str) -> tuple[Destination, ...]:
    items = node.items()
    parsed = []
    for item in items:
        fields = item.fields(("destination", "weight"))
        if "destination" not in fields:
            raise item.error("expected destination, found none")
        target = fields["destination"].fields(("host", "port"))
        if "host" not in target:
            raise fields["destination"].error("expected host, found none")
        if "port" in target:
            port = target["port"].fields(("number",))
            if "number" not in port or port["number"].integer() != 80:
                raise target["port"].error("expected port number 80 (a Knative Service's), found "
                                           f"{target['port'].value!r}")
        service, service_namespace = _service_of(target["host"], namespace)
        weight = fields["weight"].integer() if "weight" in fields else None
        parsed.append((service, service_namespace, weight, f"{target['host'].where}"))
    if all(weight is None for _, _, weight, _ in parsed):
        parsed = [(s, n, 1, w) for s, n, _, w in parsed]
    destinations = tuple(Destination(s, n, weight or 0, w) for s, n, weight, w in parsed)
    if sum(d.weight for d in destinations) <= 0:
        raise node.error("expected weights adding up to more than 0, found none")
    return destinations


def _service_of(node: Node, namespace: str) -> tuple[str, str]:
    """(service, namespace) of a destination host: `name`, `name.ns`, `name.ns.svc[.cluster.local]`."""
    host = node.text()
    for suffix in _CLUSTER_SUFFIXES:
        if host.endswith(suffix):
            host = host.removesuffix(suffix)
            break
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2:
        return parts[0], parts[1]
    raise node.error(f"expected a Service of the cluster (name, name.namespace or "
                     f"name.namespace.svc.cluster.local), found {node.value!r}")


def _parse_headers(node: Node) -> tuple[HeaderOps, HeaderOps]:
    fields = node.fields(("request", "response"))
    return (_parse_ops(fields["request"]) if "request" in fields else HeaderOps(),
            _parse_ops(fields["response"]) if "response" in fields else HeaderOps())


def _parse_ops(node: Node) -> HeaderOps:
    fields = node.fields(("set", "add", "remove"))

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        if key not in fields:
            return ()
        values = fields[key].fields(_any_key(fields[key]))
        return tuple((name, _text_value(value)) for name, value in values.items())

    return HeaderOps(pairs("set"), pairs("add"), fields["remove"].texts() if "remove" in fields else ())


def _text_value(node: Node) -> str:
    if not isinstance(node.value, str):
        raise node.error(f"expected a string, found {node.value!r}")
    return node.value
