"""VirtualService routing of the local gateway: first match wins, exact/prefix/regex, methods, headers,
query parameters, rewrites, weights, and the path normalisation before any of it."""

from __future__ import annotations

import collections

import pytest
import yaml

from local.gateway.matching import BadPath, normalize_path
from local.gateway.routing import RouteTable, parse_virtual_service
from local.gateway.spec import Node

SPEC = """
hosts: [grid.example.com]
gateways: [gw]
http:
  - name: ingest
    match: [{uri: {exact: /api/v1/ingest}, method: {exact: POST}}]
    rewrite: {uri: /}
    route: [{destination: {host: ingest.smartgrid.svc.cluster.local}}]
  - name: beta
    match: [{uri: {prefix: /api/v1/alerts}, headers: {x-beta: {regex: "on|yes"}}}]
    route: [{destination: {host: alerts-beta}}]
  - name: alerts
    match: [{uri: {prefix: /api/v1/alerts}}]
    rewrite: {uri: /v2/alerts}
    route: [{destination: {host: alerts}}]
  - name: ids
    match: [{uri: {regex: "/api/v1/things/[0-9]+"}}, {uri: {prefix: /things}, queryParams: {id: {exact: "7"}}}]
    route: [{destination: {host: things.other}}]
  - name: split
    match: [{uri: {prefix: /split}, ignoreUriCase: true}]
    route:
      - {destination: {host: a}, weight: 90}
      - {destination: {host: b}, weight: 10}
"""


def table() -> RouteTable:
    return RouteTable((parse_virtual_service(Node(yaml.safe_load(SPEC), "vs.yaml: VirtualService api", "spec"),
                                             "api", "smartgrid"),))


def route(method: str, path: str, headers: dict | None = None, query: dict | None = None) -> str | None:
    found = table().find("127.0.0.1:8080", method, path, headers or {}, query or {})
    return found[0].name if found else None


def test_exact_and_method() -> None:
    assert route("POST", "/api/v1/ingest") == "ingest"
    assert route("GET", "/api/v1/ingest") is None
    assert route("POST", "/api/v1/ingest/x") is None


def test_first_match_wins_and_headers_choose() -> None:
    assert route("GET", "/api/v1/alerts", {"x-beta": "yes"}) == "beta"
    assert route("GET", "/api/v1/alerts", {"x-beta": "maybe"}) == "alerts"  # a regex matches the whole value
    assert route("GET", "/api/v1/alerts/1") == "alerts"
    assert route("GET", "/api/v1/alertsx") == "alerts"  # Envoy's prefix is a string prefix


def test_regex_matches_the_whole_path_and_query_params() -> None:
    assert route("GET", "/api/v1/things/42") == "ids"
    assert route("GET", "/api/v1/things/42/x") is None
    assert route("GET", "/things", query={"id": "7"}) == "ids"
    assert route("GET", "/things", query={"id": "8"}) is None


def test_ignore_uri_case_and_destinations() -> None:
    assert route("GET", "/SPLIT/x") == "split"
    routes = {r.name: r for r in table().all_routes()}
    assert [(d.service, d.namespace) for d in routes["ids"].destinations] == [("things", "other")]
    assert routes["ingest"].destinations[0].host == "ingest.smartgrid.svc.cluster.local"
    picks = collections.Counter(routes["split"].pick().service for _ in range(2000))
    assert 1700 <= picks["a"] <= 1900


def test_rewrite_replaces_the_matched_prefix_and_keeps_the_rest() -> None:
    found = table().find("h", "GET", "/api/v1/alerts/7/history", {}, {})
    assert found is not None
    assert found[0].rewrite("/api/v1/alerts/7/history", found[1]) == "/v2/alerts/7/history"
    found = table().find("h", "POST", "/api/v1/ingest", {}, {})
    assert found is not None and found[0].rewrite("/api/v1/ingest", found[1]) == "/"


@pytest.mark.parametrize(("raw", "path", "query"), [
    ("/a/b?x=1", "/a/b", "?x=1"),
    ("/a/./b/../c", "/a/c", ""),
    ("/api/v1/%61lerts/../users", "/api/v1/users", ""),
    ("/a/%2E%2E/b", "/b", ""),
    ("/a%2Fb", "/a%2Fb", ""),  # an escaped slash stays escaped (not unreserved)
    ("/..", "/", ""),
])
def test_paths_are_normalised(raw: str, path: str, query: str) -> None:
    assert normalize_path(raw) == (path, query)


def test_a_target_that_is_no_absolute_path_is_refused() -> None:
    with pytest.raises(BadPath):
        normalize_path("http://elsewhere/")
