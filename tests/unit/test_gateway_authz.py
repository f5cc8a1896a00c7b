"""AuthorizationPolicy evaluation of the local gateway: DENY before ALLOW, no ALLOW match denies, an empty
spec allows nothing, Istio's value matching, and claims (lists and nested)."""

from __future__ import annotations

import yaml

from local.gateway.authn import RequestAuth
from local.gateway.authz import (
    Context,
    decide,
    parse_authorization_policy,
    policies_for,
)
from local.gateway.selectors import Workload
from local.gateway.spec import Node

GATEWAY = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
ISSUER = "https://grid.example.com/api/v1/auth"

POLICIES = """
- name: allow-nothing
  spec: {}
- name: alerts
  spec:
    selector: {matchLabels: {serving.knative.dev/service: alerts}}
    action: ALLOW
    rules:
      - from: [{source: {principals: [GATEWAY], requestPrincipals: ["ISSUER/*"]}}]
        to: [{operation: {methods: [GET], paths: [/api/v1/alerts, /api/v1/alerts/*]}}]
        when: [{key: "request.auth.claims[roles]", values: [viewer, operator, admin]}]
      - from: [{source: {principals: [GATEWAY], requestPrincipals: ["ISSUER/*"]}}]
        to: [{operation: {methods: [POST], paths: ["*/acknowledge"]}}]
        when: [{key: "request.auth.claims[roles]", values: [operator, admin]}]
      - from: [{source: {namespaces: [knative-serving]}}]
        to: [{operation: {paths: [/healthz]}}]
- name: alerts-deny
  spec:
    selector: {matchLabels: {serving.knative.dev/service: alerts}}
    action: DENY
    rules:
      - when: [{key: "request.auth.claims[smartgrid_kind]", values: [device]}]
      - to: [{operation: {notMethods: [GET, POST]}}]
      - when: [{key: "request.auth.claims[org][tier]", values: [blocked]}]
- name: open
  spec:
    selector: {matchLabels: {serving.knative.dev/service: open}}
    rules: [{}]
"""


def policies(workload: str) -> list:
    parsed = []
    for entry in yaml.safe_load(POLICIES.replace("GATEWAY", GATEWAY).replace("ISSUER", ISSUER)):
        node = Node(entry["spec"], f"p.yaml: AuthorizationPolicy {entry['name']}", "spec")
        parsed.append(parse_authorization_policy(node, entry["name"], "smartgrid"))
    return policies_for(parsed, Workload.service(workload, "smartgrid"))


def auth(sub: str = "alice", **claims) -> RequestAuth:
    return RequestAuth(f"{ISSUER}/{sub}", {"sub": sub, **claims}, ("smartgrid",), None)


def allowed(workload: str, method: str, path: str, auth_: RequestAuth | None,
            principal: str = GATEWAY, namespace: str = "istio-system") -> bool:
    return decide(policies(workload), Context(method, path, {}, auth_, principal, namespace))


def test_roles_from_a_list_claim() -> None:
    assert allowed("alerts", "GET", "/api/v1/alerts", auth(roles=["viewer"], smartgrid_kind="user"))
    assert allowed("alerts", "GET", "/api/v1/alerts/7/history", auth(roles=["admin"], smartgrid_kind="user"))
    assert not allowed("alerts", "GET", "/api/v1/alerts", auth(roles=["analyst"], smartgrid_kind="user"))
    assert not allowed("alerts", "GET", "/api/v1/alertsx", auth(roles=["viewer"], smartgrid_kind="user"))
    assert allowed("alerts", "POST", "/api/v1/alerts/7/acknowledge", auth(roles=["operator"], smartgrid_kind="user"))
    assert not allowed("alerts", "POST", "/api/v1/alerts/7/acknowledge", auth(roles=["viewer"], smartgrid_kind="user"))


def test_no_request_principal_matches_no_rule_asking_for_one() -> None:
    assert not allowed("alerts", "GET", "/api/v1/alerts", None)
    assert allowed("alerts", "GET", "/healthz", None, "cluster.local/ns/knative-serving/sa/controller",
                   "knative-serving")
    assert not allowed("alerts", "GET", "/api/v1/alerts", auth(roles=["viewer"]), "cluster.local/ns/x/sa/y", "x")


def test_deny_comes_before_allow() -> None:
    device = auth("s-1", roles=["admin"], smartgrid_kind="device")
    assert not allowed("alerts", "GET", "/api/v1/alerts", device)
    assert not allowed("alerts", "DELETE", "/api/v1/alerts", auth(roles=["admin"]))  # notMethods
    blocked = auth(roles=["admin"], smartgrid_kind="user", org={"tier": "blocked"})
    assert not allowed("alerts", "GET", "/api/v1/alerts", blocked)  # a nested claim
    assert allowed("alerts", "GET", "/api/v1/alerts", auth(roles=["admin"], org={"tier": "gold"}))


def test_an_empty_spec_allows_nothing_and_an_empty_rule_everything() -> None:
    assert not allowed("process", "POST", "/", None)  # only the allow-nothing policy selects it
    assert allowed("open", "DELETE", "/anything", None)
    assert decide([], Context("GET", "/", {}, None, "", ""))  # no policy at all: allowed
