"""The Istio side of knative/: API gateway, token rules, deny-by-default authorization, rate limits.

Checks the objects `kubectl kustomize knative/` renders (the files themselves where kubectl is missing):
each validates against its CRD schema in ../shared/crds (the validator of test_manifests.py); no ALLOW
rule admits every caller to everything and the namespace denies by default; the policies agree with the
role matrix (shared/auth/policy.py), the eventing sources (eventing/) and the Services' scaling (the
activator choice); the VirtualService routes the way the README says; the rate limit configuration is
well formed and what the gateway's descriptors can match; and the public issuer URL set in
knative/config.yaml reaches every place that must agree with it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.auth.policy import allowed_roles
from tests.unit.test_manifests import (  # noqa: F401  (schemas: the session fixture, shared)
    CRD_HINT,
    DOCUMENTS,
    REPO_ROOT,
    UNVALIDATED,
    Schemas,
    _schema_errors,
    schemas,
)

KNATIVE = REPO_ROOT / "knative"
NAMESPACE = "smartgrid"
ISTIO_KINDS = {"Gateway", "VirtualService", "RequestAuthentication", "AuthorizationPolicy",
               "PeerAuthentication", "DestinationRule"}
SERVICE_KEY = ("serving.knative.dev/v1", "Service")

GATEWAY_SA = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
ACTIVATOR_SA = "cluster.local/ns/knative-serving/sa/controller"
PROMETHEUS_SA = "cluster.local/ns/monitoring/sa/prometheus-k8s"
BROKER_SA = "cluster.local/ns/knative-eventing/sa/knative-kafka-broker-data-plane"
KAFKA_SOURCE_SA = "cluster.local/ns/knative-eventing/sa/knative-kafka-source-data-plane"
PING_SOURCE_SA = "cluster.local/ns/knative-eventing/sa/pingsource-mt-adapter"
# Who delivers for each kind of eventing object that names a subscriber or dead-letter sink.
DISPATCHER = {"Broker": BROKER_SA, "Trigger": BROKER_SA, "KafkaSource": KAFKA_SOURCE_SA,
              "PingSource": PING_SOURCE_SA}
PLATFORM_PATHS = {"/healthz", "/metrics"}
# The VirtualService fields the local emulation reads (it refuses others), plus rewrite.authority: the
# Host Knative's cluster-local gateway routes on (see knative/istio/gateway.yaml).
VS_ROUTE_FIELDS = {"name", "match", "route", "rewrite", "timeout", "retries", "corsPolicy", "headers"}
VS_MATCH_FIELDS = {"uri", "method", "headers"}
VS_REWRITE_FIELDS = {"uri", "authority"}
VS_CORS_FIELDS = {"allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials"}
RATE_UNITS = {"second", "minute", "hour", "day"}


# --- the render -------------------------------------------------------------------------------------

def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize <directory>` as documents."""
    out = subprocess.run(["kubectl", "kustomize", str(directory)], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@functools.cache
def _render() -> tuple[dict[str, Any], ...]:
    """What `kubectl apply -k knative/` would apply; the manifest files when kubectl is not installed."""
    if shutil.which("kubectl"):
        return tuple(_kustomize(KNATIVE))
    return tuple(doc for _, _, doc in DOCUMENTS if isinstance(doc, dict))


def _kind(kind: str, docs: tuple[dict[str, Any], ...] | None = None) -> list[dict[str, Any]]:
    """The documents of one kind, of the render unless `docs` are given."""
    return [doc for doc in (_render() if docs is None else docs) if doc.get("kind") == kind]


def _one(kind: str, name: str, docs: tuple[dict[str, Any], ...] | None = None) -> dict[str, Any]:
    (found,) = [doc for doc in _kind(kind, docs) if doc["metadata"]["name"] == name]
    return found


def _config(docs: tuple[dict[str, Any], ...] | None = None) -> dict[str, str]:
    return _one("ConfigMap", "smartgrid-config", docs)["data"]


def _services() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _render()
            if (doc.get("apiVersion"), doc.get("kind")) == SERVICE_KEY}


def _policies() -> list[dict[str, Any]]:
    return _kind("AuthorizationPolicy")


def _allow_rules() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(policy, rule) for every rule of every ALLOW policy."""
    for policy in _policies():
        spec = policy.get("spec") or {}
        if spec.get("action", "ALLOW") == "ALLOW":
            for rule in spec.get("rules") or []:
                yield policy, rule


def _callee(policy: dict[str, Any]) -> str | None:
    """The Knative Service a policy selects, None for other selectors or none."""
    labels = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return labels.get("serving.knative.dev/service")


def _sources(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry.get("source") or {} for entry in rule.get("from") or []]


def _operations(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry.get("operation") or {} for entry in rule.get("to") or []]


def _principals(rule: dict[str, Any]) -> set[str]:
    return {p for source in _sources(rule) for p in source.get("principals") or []}


def _needs_token(rule: dict[str, Any]) -> bool:
    """Every source of the rule requires a verified token."""
    sources = _sources(rule)
    return bool(sources) and all(source.get("requestPrincipals") for source in sources)


def _is_platform_rule(rule: dict[str, Any]) -> bool:
    """Knative's probes/scrapes and Prometheus: GET of /healthz or /metrics only."""
    operations = _operations(rule)
    return bool(operations) and all(
        op.get("methods") == ["GET"] and set(op.get("paths") or []) <= PLATFORM_PATHS and op.get("paths")
        for op in operations)


# --- schemas ----------------------------------------------------------------------------------------

def test_render_has_every_istio_kind() -> None:
    kinds = {doc.get("kind") for doc in _render()}
    assert ISTIO_KINDS <= kinds, f"missing: {ISTIO_KINDS - kinds}"


def test_istio_objects_match_their_crds(schemas: Schemas) -> None:  # noqa: F811 (the imported fixture)
    """Every Istio object of the render validates against its CRD copy; EnvoyFilter is the one Istio kind
    knowingly left unchecked (no CRD copy)."""
    problems, validated = [], set()
    for doc in _render():
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        if ".istio.io/" not in key[0]:
            continue
        if key in UNVALIDATED:
            assert key == ("networking.istio.io/v1alpha3", "EnvoyFilter")
            continue
        errors = _schema_errors(doc, schemas)
        problems += [f"{key[1]}/{doc['metadata']['name']}: {error}" for error in errors]
        validated.add(key[1])
    assert not problems, "\n".join(problems) + f"\n(CRDs: {CRD_HINT})"
    assert validated == ISTIO_KINDS


def test_schema_validator_catches_a_bad_policy(schemas: Schemas) -> None:  # noqa: F811
    """Control: the validator rejects a misspelt field of an AuthorizationPolicy."""
    doc = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": "p", "namespace": NAMESPACE},
           "spec": {"rules": [{"from": [{"source": {"principal": ["x"]}}]}]}}
    assert _schema_errors(doc, schemas)


# --- deny by default ---------------------------------------------------------------------------------

def _broad_source(source: dict[str, Any]) -> bool:
    """A source that names no caller precisely: no principals and no token, or a wildcard principal."""
    principals = source.get("principals") or []
    if any(p == "*" for p in principals):
        return True
    return not principals and not source.get("requestPrincipals")


def _unrestricted(rule: dict[str, Any]) -> bool:
    """The rule admits its callers to everything: no operation narrows it and no condition."""
    narrowing = ("paths", "methods", "ports", "hosts")
    operations = _operations(rule)
    narrowed = bool(operations) and all(any(op.get(key) for key in narrowing) for op in operations)
    return not narrowed and not rule.get("when")


def allow_all_rules(policies: list[dict[str, Any]]) -> list[str]:
    """Rules of ALLOW policies that match every path for every caller (or a namespace's worth of them)."""
    found = []
    for policy in policies:
        spec = policy.get("spec") or {}
        if spec.get("action", "ALLOW") != "ALLOW":
            continue
        for index, rule in enumerate(spec.get("rules") or []):
            sources = _sources(rule)
            if (not sources or any(_broad_source(s) for s in sources)) and _unrestricted(rule):
                found.append(f"{policy['metadata']['name']} rule {index}")
    return found


def test_no_allow_rule_admits_everyone_to_everything() -> None:
    assert allow_all_rules(_policies()) == []


@pytest.mark.parametrize("rule", [
    {},
    {"from": [{"source": {"principals": ["*"]}}]},
    {"from": [{"source": {"namespaces": ["smartgrid", "knative-eventing", "istio-system"]}}]},
    {"to": [{"operation": {"notPaths": ["/admin"]}}]},
])
def test_the_allow_all_check_catches(rule: dict[str, Any]) -> None:
    """Control: the shapes of an allow-everything rule, the old namespace allow-list among them."""
    policy = {"metadata": {"name": "p"}, "spec": {"action": "ALLOW", "rules": [rule]}}
    assert allow_all_rules([policy]) == ["p rule 0"]


def test_the_namespace_denies_by_default() -> None:
    """An allow-nothing policy (`spec: {}`) covers every workload of the namespace."""
    allow_nothing = [p for p in _policies() if p["metadata"].get("namespace") == NAMESPACE
                     and not p.get("spec")]
    assert allow_nothing, "no AuthorizationPolicy with spec: {} in namespace smartgrid"


def test_every_rule_names_its_callers() -> None:
    """No anonymous rule: each names principals (or the namespace, for the public JWKS only)."""
    for policy, rule in _allow_rules():
        sources = _sources(rule)
        assert sources, f"{policy['metadata']['name']}: a rule without `from`"
        for source in sources:
            if source.get("namespaces"):
                assert source["namespaces"] == [NAMESPACE] and all(
                    set(op.get("paths", [])) <= {"/api/v1/auth/jwks", "/api/v1/auth/.well-known/openid-configuration"}
                    and op.get("methods") == ["GET"] for op in _operations(rule)), policy["metadata"]["name"]
            else:
                assert source.get("principals"), policy["metadata"]["name"]
                assert all(p.startswith("cluster.local/ns/") and "*" not in p for p in source["principals"])


def test_paths_use_istio_syntax() -> None:
    """Exact, prefix `x*`, suffix `*x` or `*`: one wildcard at most, at an end."""
    for policy, rule in _allow_rules():
        for op in _operations(rule):
            for path in op.get("paths", []) + op.get("notPaths", []):
                inner = path[1:-1] if len(path) > 1 else ""
                assert "*" not in inner and not (path.startswith("*") and path.endswith("*") and path != "*"), \
                    f"{policy['metadata']['name']}: {path}"


# --- who may call what -------------------------------------------------------------------------------

def test_every_function_has_its_identity_and_policy() -> None:
    """Each Knative Service runs as its own ServiceAccount, and one ALLOW policy selects it."""
    accounts = {doc["metadata"]["name"] for doc in _kind("ServiceAccount")}
    callees = [_callee(p) for p in _policies()]
    for name, service in _services().items():
        account = service["spec"]["template"]["spec"].get("serviceAccountName")
        assert account == f"smartgrid-{name}" and account in accounts, name
        assert callees.count(name) == 1, f"{name}: {callees.count(name)} policies select it"
    assert "smartgrid-rebuild" in accounts


def _tokenless_callers(callee: str) -> set[str]:
    """Principals a callee admits without a token, the platform's probes and scrapes left out."""
    return {p for policy, rule in _allow_rules() if _callee(policy) == callee
            if not _needs_token(rule) and not _is_platform_rule(rule) for p in _principals(rule)}


def test_the_activator_relays_only_requests_with_a_token() -> None:
    """Knative's activator forwards any caller, with its own identity: it may be named only where a
    verified token is required too, or for its own probes and the autoscaler's scrape."""
    for policy, rule in _allow_rules():
        if ACTIVATOR_SA in _principals(rule):
            assert _needs_token(rule) or _is_platform_rule(rule) or all(
                path.startswith("/api/v1/auth/") for op in _operations(rule) for path in op.get("paths", [])), \
                f"{policy['metadata']['name']}: the activator without a token"


def _annotations(service: dict[str, Any]) -> dict[str, str]:
    return service["spec"]["template"].get("metadata", {}).get("annotations", {})


def test_tokenless_callees_keep_the_activator_out_of_their_path() -> None:
    """A Service that admits callers by identity alone (event deliveries, the registry readers) must not
    be reached through the activator: min-scale >= 1 and target-burst-capacity 0."""
    for name, service in _services().items():
        if _tokenless_callers(name):
            annotations = _annotations(service)
            assert int(annotations.get("autoscaling.knative.dev/min-scale", "0")) >= 1, name
            assert annotations.get("autoscaling.knative.dev/target-burst-capacity") == "0", name


def _delivery_sources() -> dict[str, set[str]]:
    """Subscriber -> the dispatchers that deliver to it, from the Triggers, sources and dead-letter sinks
    of eventing/."""
    expected: dict[str, set[str]] = {}

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            ref = node.get("ref")
            if isinstance(ref, dict) and ref.get("kind") == "Service":
                yield ref["name"]
            for key, value in node.items():
                if key != "ref":
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for doc in _render():
        dispatcher = DISPATCHER.get(doc.get("kind", ""))
        if dispatcher:
            for name in refs(doc.get("spec")):
                expected.setdefault(name, set()).add(dispatcher)
    return expected


def _delivery_callers(callee: str) -> set[str]:
    """Principals admitted to POST / of a callee."""
    return {p for policy, rule in _allow_rules() if _callee(policy) == callee
            for op in _operations(rule) if "/" in op.get("paths", []) and "POST" in op.get("methods", [])
            if not _needs_token(rule) for p in _principals(rule)}


def test_event_deliveries_come_only_from_their_dispatchers() -> None:
    """POST / of each subscriber admits exactly the eventing data planes that deliver to it."""
    expected = _delivery_sources()
    assert expected, "no Trigger, source or dead-letter sink found"
    for name in _services():
        assert _delivery_callers(name) == expected.get(name, set()), name


def test_ingest_takes_device_tokens_only() -> None:
    (rule,) = [rule for policy, rule in _allow_rules() if _callee(policy) == "ingest" and _needs_token(rule)]
    assert _principals(rule) == {GATEWAY_SA, ACTIVATOR_SA}
    assert rule["when"] == [{"key": "request.auth.claims[smartgrid_kind]", "values": ["device"]}]
    assert _operations(rule) == [{"methods": ["POST"], "paths": ["/"]}]


def _sample(callee: str, path: str) -> str:
    """A concrete request path an Istio path pattern matches (a suffix pattern under the callee's API,
    /api/v1/<callee>/<id>: alerts' actions)."""
    if path.startswith("*"):
        return f"/api/v1/{callee}/x{path[1:]}"
    return path.replace("*", "x")


def test_token_rules_agree_with_the_role_matrix() -> None:
    """Each role a policy admits on a path is one shared/auth/policy.py allows there: the mesh is never
    more permissive than the functions' own check."""
    checked = 0
    for policy, rule in _allow_rules():
        roles = [c for c in rule.get("when", []) if c["key"] == "request.auth.claims[roles]"]
        if not roles:
            continue
        (condition,) = roles
        for op in _operations(rule):
            for method in op.get("methods") or ["GET"]:
                for path in op["paths"]:
                    sample = _sample(_callee(policy) or "", path)
                    allowed = allowed_roles(method, sample)
                    assert allowed and set(condition["values"]) <= allowed, \
                        f"{policy['metadata']['name']}: {method} {sample} admits {condition['values']}, matrix {sorted(allowed)}"
                    checked += 1
    assert checked >= 10


def test_prometheus_and_knative_reach_every_function() -> None:
    for name in _services():
        rules = [rule for policy, rule in _allow_rules() if _callee(policy) == name and _is_platform_rule(rule)]
        assert any(_principals(r) == {PROMETHEUS_SA} for r in rules), name
        assert any(_principals(r) == {ACTIVATOR_SA} and {"/healthz", "/metrics"} <= set(_operations(r)[0]["paths"])
                   for r in rules), name


# --- tokens and the issuer ---------------------------------------------------------------------------

def test_request_authentication_trusts_the_configured_issuer() -> None:
    config = _config()
    mesh = _one("RequestAuthentication", "smartgrid-jwt")
    assert mesh["metadata"]["namespace"] == NAMESPACE and "selector" not in mesh["spec"]
    for ra in _kind("RequestAuthentication"):
        (rule,) = ra["spec"]["jwtRules"]
        assert rule["issuer"] == config["auth-issuer"]
        assert rule["jwksUri"] == config["auth-jwks-url"]
        assert rule["audiences"] == ["smartgrid"] and rule["forwardOriginalToken"] is True


def _issuer_uses(docs: tuple[dict[str, Any], ...]) -> dict[str, set[str]]:
    """Every value derived from the issuer in a render, by where it is used."""
    uses: dict[str, set[str]] = {"issuer": set(), "principal": set(), "host": set(), "origin": set(),
                                 "metadata": set(), "vhost": set()}
    for doc in docs:
        kind = doc.get("kind")
        if kind == "RequestAuthentication":
            uses["issuer"] |= {r["issuer"] for r in doc["spec"]["jwtRules"]}
        if kind == "AuthorizationPolicy":
            uses["principal"] |= {rp for rule in (doc.get("spec") or {}).get("rules", [])
                                  for entry in rule.get("from", []) for rp in entry["source"].get("requestPrincipals", [])}
        if kind == "Gateway":
            uses["host"] |= {h for server in doc["spec"]["servers"] for h in server["hosts"]}
        if kind == "VirtualService":
            uses["host"] |= set(doc["spec"]["hosts"])
            uses["origin"] |= {o["exact"] for route in doc["spec"]["http"]
                               for o in (route.get("corsPolicy") or {}).get("allowOrigins", [])}
        if kind == "EnvoyFilter":
            for patch in doc["spec"]["configPatches"]:
                vhost = ((patch.get("match") or {}).get("routeConfiguration") or {}).get("vhost")
                if vhost:
                    uses["vhost"].add(vhost["name"])
                for limit in (patch["patch"]["value"].get("route") or {}).get("rate_limits", []):
                    for action in limit["actions"]:
                        if "metadata" in action:
                            uses["metadata"].add(action["metadata"]["metadata_key"]["path"][0]["key"])
    return uses


def _expected_uses(issuer: str) -> dict[str, set[str]]:
    host = issuer.split("/")[2]
    return {"issuer": {issuer}, "principal": {f"{issuer}/*"}, "host": {host},
            "origin": {issuer.removesuffix("/api/v1/auth")}, "metadata": {issuer}, "vhost": {f"{host}:443"}}


def test_everything_agrees_with_the_issuer() -> None:
    assert _issuer_uses(_render()) == _expected_uses(_config()["auth-issuer"])


def test_a_changed_issuer_reaches_every_use(tmp_path: Path) -> None:
    """Set another auth-issuer in a copy of knative/ and render: kustomize's replacements carry it to
    every place it is used (a new policy with a token rule that the replacement misses fails here)."""
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    for folder in ("knative", "eventing"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    config = tmp_path / "knative" / "config.yaml"
    current = _config()["auth-issuer"]
    changed = "https://api.grid.test/api/v1/auth"
    text = config.read_text()
    assert text.count(f"auth-issuer: {current}") == 1
    config.write_text(text.replace(f"auth-issuer: {current}", f"auth-issuer: {changed}"))
    docs = tuple(_kustomize(tmp_path / "knative"))
    assert _issuer_uses(docs) == _expected_uses(changed)


# --- the gateway -------------------------------------------------------------------------------------

def _virtual_service() -> dict[str, Any]:
    return _one("VirtualService", "smartgrid-api")


def _route(method: str, path: str) -> dict[str, Any] | None:
    """The first route of the VirtualService that matches, as Istio picks it."""
    for route in _virtual_service()["spec"]["http"]:
        for match in route.get("match") or [{}]:
            uri = match.get("uri") or {}
            if "exact" in uri and path != uri["exact"]:
                continue
            if "prefix" in uri and not path.startswith(uri["prefix"]):
                continue
            if "regex" in uri and not re.fullmatch(uri["regex"], path):
                continue
            if "method" in match and match["method"].get("exact") != method:
                continue
            return route
    return None


def _destination(route: dict[str, Any]) -> str:
    (target,) = route["route"]
    return target["destination"]["host"].split(".")[0]


@pytest.mark.parametrize(("method", "path", "name", "service"), [
    ("POST", "/api/v1/ingest", "ingest", "ingest"),
    ("GET", "/api/v1/ingest", None, None),
    ("POST", "/api/v1/auth/token", "auth", "users"),
    ("GET", "/api/v1/auth/jwks", "auth", "users"),
    ("GET", "/api/v1/users/alice", "admin-read", "users"),
    ("PATCH", "/api/v1/users/alice", "admin", "users"),
    ("POST", "/api/v1/devices", "admin", "users"),
    ("GET", "/api/v1/audit", "admin-read", "users"),
    ("GET", "/api/v1/alerts/a1/history", "alerts-read", "alerts"),
    ("POST", "/api/v1/alerts/a1/acknowledge", "alerts", "alerts"),
    ("GET", "/api/v1/analytics/meters/m1", "analytics", "analytics"),
    ("POST", "/api/v1/analytics", None, None),
    ("GET", "/api/v1/forecasts/feeders/f1", "forecasts", "forecast"),
    ("DELETE", "/api/v1/forecasts/x", None, None),
    ("GET", "/api/v1/readings", None, None),
])
def test_routes(method: str, path: str, name: str | None, service: str | None) -> None:
    route = _route(method, path)
    assert (route and route["name"], route and _destination(route)) == (name, service)


def test_ingest_is_rewritten_to_the_root() -> None:
    route = _route("POST", "/api/v1/ingest")
    assert route["rewrite"]["uri"] == "/" and route["retries"] == {"attempts": 0}


def test_every_route_is_named_timed_and_routed_to_its_function() -> None:
    names = []
    for route in _virtual_service()["spec"]["http"]:
        names.append(route["name"])
        assert route["timeout"], route["name"]
        host = route["route"][0]["destination"]["host"]
        assert re.fullmatch(r"[a-z]+\.smartgrid\.svc\.cluster\.local", host), host
        assert route["rewrite"]["authority"] == host, route["name"]
    assert len(names) == len(set(names))


def test_retries_only_on_idempotent_methods() -> None:
    """A route that retries matches only GET (and the preflight OPTIONS); every other route retries
    nothing, explicitly."""
    for route in _virtual_service()["spec"]["http"]:
        retries = route["retries"]
        if retries.get("attempts", 0) > 0:
            methods = {(m.get("method") or {}).get("exact") for m in route["match"]}
            assert methods <= {"GET", "OPTIONS"}, route["name"]
            assert retries["perTryTimeout"] and retries["retryOn"], route["name"]
        else:
            assert retries == {"attempts": 0}, route["name"]


def test_cors_and_caching() -> None:
    host = _virtual_service()["spec"]["hosts"][0]
    for route in _virtual_service()["spec"]["http"]:
        if route["name"] == "ingest":
            continue
        cors = route["corsPolicy"]
        assert cors["allowOrigins"] == [{"exact": f"https://{host}"}]
        assert {"authorization", "content-type", "if-none-match"} <= set(cors["allowHeaders"])
        assert {"etag", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= \
            set(cors["exposeHeaders"])
        assert cors["maxAge"] and cors.get("allowCredentials") is not True
        if _destination(route) == "users":
            assert route["headers"]["response"]["set"]["Cache-Control"] == "no-store"


def test_virtual_service_keeps_to_the_emulated_fields() -> None:
    """The fields the local emulation reads, and rewrite.authority (named in the report to its owner)."""
    spec = _virtual_service()["spec"]
    assert set(spec) == {"hosts", "gateways", "http"}
    for route in spec["http"]:
        assert set(route) <= VS_ROUTE_FIELDS, route["name"]
        assert all(set(m) <= VS_MATCH_FIELDS for m in route["match"])
        assert all(set(r) <= {"destination", "weight"} and set(r["destination"]) == {"host"}
                   for r in route["route"])
        assert set(route.get("rewrite", {})) <= VS_REWRITE_FIELDS
        assert set(route.get("retries", {})) <= {"attempts", "perTryTimeout", "retryOn"}
        assert set(route.get("corsPolicy", {})) <= VS_CORS_FIELDS
        assert set(route.get("headers", {})) <= {"response"} and \
            all(set(v) <= {"set"} for v in route.get("headers", {}).values())


def test_gateway_is_https_with_a_redirect() -> None:
    gateway = _one("Gateway", "smartgrid-gateway")
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    servers = {s["port"]["number"]: s for s in gateway["spec"]["servers"]}
    assert servers[443]["tls"]["mode"] == "SIMPLE" and servers[443]["tls"]["credentialName"] == "smartgrid-tls"
    assert servers[80]["tls"] == {"httpsRedirect": True}
    assert _virtual_service()["spec"]["gateways"] == ["smartgrid-gateway"]


# --- rate limits -------------------------------------------------------------------------------------

def _rate_config() -> dict[str, Any]:
    return yaml.safe_load(_one("ConfigMap", "smartgrid-ratelimit")["data"]["config.yaml"])


def _walk(descriptors: list[dict[str, Any]], prefix: tuple[tuple[str, str | None], ...] = ()
          ) -> Iterator[tuple[tuple[tuple[str, str | None], ...], dict[str, Any]]]:
    """(path of (key, value) pairs, descriptor) for every descriptor, nested ones included."""
    for descriptor in descriptors:
        path = (*prefix, (descriptor["key"], descriptor.get("value")))
        yield path, descriptor
        yield from _walk(descriptor.get("descriptors", []), path)


def test_rate_limit_config_is_in_envoy_ratelimit_format() -> None:
    config = _rate_config()
    assert set(config) == {"domain", "descriptors"} and config["domain"] == "smartgrid"
    for path, descriptor in _walk(config["descriptors"]):
        assert set(descriptor) <= {"key", "value", "rate_limit", "descriptors"}, path
        assert isinstance(descriptor["key"], str) and descriptor["key"]
        limit = descriptor.get("rate_limit")
        if limit is not None:
            assert set(limit) == {"unit", "requests_per_unit"} and limit["unit"] in RATE_UNITS, path
            assert isinstance(limit["requests_per_unit"], int) and limit["requests_per_unit"] > 0, path
        else:
            assert descriptor.get("descriptors"), f"{path}: neither a limit nor nested descriptors"


def test_rate_limit_defaults() -> None:
    """Each caller has its own budget per route: devices 50/s, users 20/s, services 100/s, callers
    without a token 5/s per address (1/s on the issuer)."""
    limits = {path: d["rate_limit"] for path, d in _walk(_rate_config()["descriptors"]) if "rate_limit" in d}
    per_second = {path: limit["requests_per_unit"] for path, limit in limits.items() if limit["unit"] == "second"}
    assert per_second == {
        (("caller_kind", "device"), ("route", None), ("caller", None)): 50,
        (("caller_kind", "user"), ("route", None), ("caller", None)): 20,
        (("caller_kind", "service"), ("route", None), ("caller", None)): 100,
        (("caller_kind", "anonymous"), ("route", "auth"), ("caller", None)): 1,
        (("caller_kind", "anonymous"), ("route", None), ("caller", None)): 5,
    }


def test_rate_limit_config_is_the_local_gateways() -> None:
    """The cluster's rate limit service and the local gateway (local/gateway/rate-limits.yaml) enforce
    the same document."""
    local = REPO_ROOT / "local" / "gateway" / "rate-limits.yaml"
    if not local.is_file():
        pytest.skip("no local gateway rate limits")
    assert _rate_config() == yaml.safe_load(local.read_text(encoding="utf-8"))


def _envoy_filter() -> dict[str, Any]:
    return _one("EnvoyFilter", "smartgrid-ratelimit")


def _route_patches() -> dict[str, list[list[dict[str, Any]]]]:
    """VirtualService route name -> the rate_limits actions the gateway's Envoy route gets."""
    patches = {}
    for patch in _envoy_filter()["spec"]["configPatches"]:
        if patch["applyTo"] == "HTTP_ROUTE":
            vhost = patch["match"]["routeConfiguration"]["vhost"]
            assert vhost["name"] == f"{_virtual_service()['spec']['hosts'][0]}:443"
            limits = patch["patch"]["value"]["route"]["rate_limits"]
            patches[vhost["route"]["name"]] = [limit["actions"] for limit in limits]
    return patches


def _action_entry(action: dict[str, Any]) -> tuple[str, str | None]:
    """(descriptor key, fixed value or None when it comes from the request) of an Envoy action."""
    if "generic_key" in action:
        return action["generic_key"]["descriptor_key"], action["generic_key"]["descriptor_value"]
    if "header_value_match" in action:
        return action["header_value_match"]["descriptor_key"], action["header_value_match"]["descriptor_value"]
    if "metadata" in action:
        assert "default_value" not in action["metadata"], "a token claim with a default counts callers without one"
        return action["metadata"]["descriptor_key"], None
    if "request_headers" in action:
        return action["request_headers"]["descriptor_key"], None
    raise AssertionError(f"unexpected action {action}")


def test_every_route_sends_the_descriptors_the_config_expects() -> None:
    """Every VirtualService route gets two descriptors, (caller_kind, route, caller) with the route's own
    name: one from the token's claims, one for callers without a token."""
    (http_filter,) = [p for p in _envoy_filter()["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    assert http_filter["patch"]["value"]["typed_config"]["domain"] == _rate_config()["domain"]
    patches = _route_patches()
    assert set(patches) == {route["name"] for route in _virtual_service()["spec"]["http"]}
    for name, descriptors in patches.items():
        sent = [[_action_entry(a) for a in actions] for actions in descriptors]
        assert sent == [[("caller_kind", None), ("route", name), ("caller", None)],
                        [("caller_kind", "anonymous"), ("route", name), ("caller", None)]], name
        token, anonymous = descriptors
        claims = [a["metadata"]["metadata_key"]["path"][1]["key"] for a in token if "metadata" in a]
        assert claims == ["smartgrid_kind", "sub"]
        assert anonymous[0]["header_value_match"]["expect_match"] is False


def test_every_limit_can_be_reached_by_a_gateway_descriptor() -> None:
    """Each limit of the config sits at the depth of the descriptors the gateway sends and on values it
    can send: no limit is dead configuration."""
    kinds = {"device", "user", "service"}
    sent = [[_action_entry(a) for a in actions] for descriptors in _route_patches().values()
            for actions in descriptors]
    for path, descriptor in _walk(_rate_config()["descriptors"]):
        if "rate_limit" not in descriptor:
            continue
        assert any(
            len(entries) == len(path) and all(
                key == sent_key and (value is None or sent_value == value
                                     or (sent_value is None and (key, value) != ("caller_kind", "anonymous")
                                         and (key != "caller_kind" or value in kinds)))
                for (key, value), (sent_key, sent_value) in zip(path, entries))
            for entries in sent), f"no gateway descriptor reaches {path}"


def test_rate_limit_service_is_deployed_and_reachable() -> None:
    """The gateway's gRPC cluster is Istio's cluster of the Service, the ConfigMap is mounted where the
    service reads it, and only the gateway may ask it (only it may use its Redis)."""
    (http_filter,) = [p for p in _envoy_filter()["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    cluster = http_filter["patch"]["value"]["typed_config"]["rate_limit_service"]["grpc_service"]["envoy_grpc"]
    service = _one("Service", "smartgrid-ratelimit")
    (port,) = service["spec"]["ports"]
    assert cluster["cluster_name"] == f"outbound|{port['port']}||smartgrid-ratelimit.{NAMESPACE}.svc.cluster.local"
    deployment = _one("Deployment", "smartgrid-ratelimit")
    spec = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    (mount,) = spec["containers"][0]["volumeMounts"]
    assert mount["mountPath"] == f"{env['RUNTIME_ROOT']}/{env['RUNTIME_SUBDIRECTORY']}/config"
    assert spec["volumes"][0]["configMap"]["name"] == "smartgrid-ratelimit"
    assert env["REDIS_URL"].split(":")[0] == "smartgrid-ratelimit-redis"
    by_name = {p["metadata"]["name"]: p for p in _policies()}
    assert {p for r in by_name["ratelimit"]["spec"]["rules"] for p in _principals(r)} == {GATEWAY_SA}
    assert {p for r in by_name["ratelimit-redis"]["spec"]["rules"] for p in _principals(r)} == \
        {f"cluster.local/ns/{NAMESPACE}/sa/{spec['serviceAccountName']}"}
