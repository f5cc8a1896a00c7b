"""Loading Istio manifests for the local gateway: what is read, what is skipped, what is refused (naming the
file and the field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.gateway.manifests import SKIPPED_KINDS, load_manifests
from local.gateway.spec import GatewayManifestError

REPO = Path(__file__).resolve().parents[2]

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: smartgrid}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
VIRTUAL_SERVICE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: smartgrid}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
    - name: a
      match: [{uri: {prefix: /a}}]
      route: [{destination: {host: a.smartgrid.svc.cluster.local}}]
"""


def write(tmp_path: Path, text: str, name: str = "mesh.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(GatewayManifestError) as raised:
        load_manifests(write(tmp_path, text))
    return str(raised.value)


def test_the_repository_manifests_load(tmp_path: Path) -> None:
    manifests = load_manifests(REPO / "knative" / "istio")
    assert [vs.name for vs in manifests.bound()] == ["smartgrid-api"]
    assert manifests.policies and manifests.authentications


def test_an_unsupported_route_field_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    text = GATEWAY + "---" + VIRTUAL_SERVICE + """
    - name: b
      route: [{destination: {host: b}}]
    - name: c
      fault: {abort: {httpStatus: 500, percentage: {value: 1}}}
      route: [{destination: {host: c}}]
"""
    message = refusal(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'mesh.yaml'}: VirtualService api: spec.http[2].fault: "
                              "not supported by the local gateway")


@pytest.mark.parametrize(("snippet", "field"), [
    ("mirror: {host: b}", "spec.http[1].mirror"),
    ("redirect: {uri: /x}", "spec.http[1].redirect"),
    ("retries: {attempts: 2, retryOn: envoy-ratelimited}", "spec.http[1].retries.retryOn"),
    ("retries: {attempts: 2, retryRemoteLocalities: true}", "spec.http[1].retries.retryRemoteLocalities"),
    ("match: [{uri: {prefix: /b}, sourceLabels: {app: x}}]", "spec.http[1].match[0].sourceLabels"),
    ("match: [{headers: {uri: {exact: /x}}}]", "spec.http[1].match[0].headers.uri"),
    ("corsPolicy: {allowOrigin: ['*']}", "spec.http[1].corsPolicy.allowOrigin"),
])
def test_other_unsupported_route_fields(tmp_path: Path, snippet: str, field: str) -> None:
    text = GATEWAY + "---" + VIRTUAL_SERVICE + f"""
    - name: b
      {snippet}
      route: [{{destination: {{host: b}}}}]
"""
    assert f": VirtualService api: {field}" in refusal(tmp_path, text)


def test_a_custom_authorization_policy_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: smartgrid}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: [/admin/*]}}]}]
""")
    assert ": AuthorizationPolicy ext: spec.action: action CUSTOM" in message


@pytest.mark.parametrize(("rule", "field"), [
    ("{from: [{source: {ipBlocks: [10.0.0.0/8]}}]}", "spec.rules[0].from[0].source.ipBlocks"),
    ("{to: [{operation: {ports: ['8080']}}]}", "spec.rules[0].to[0].operation.ports"),
    ("{when: [{key: source.ip, values: [10.0.0.1]}]}", "spec.rules[0].when[0].key"),
    ("{to: [{operation: {paths: ['/api/{*}/x']}}]}", "spec.rules[0].to[0].operation.paths[0]"),
])
def test_unsupported_policy_fields_are_refused(tmp_path: Path, rule: str, field: str) -> None:
    message = refusal(tmp_path, f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p, namespace: smartgrid}}
spec:
  action: ALLOW
  rules: [{rule}]
""")
    assert f": AuthorizationPolicy p: {field}" in message


def test_cluster_only_kinds_are_skipped_and_unknown_kinds_refused(tmp_path: Path) -> None:
    assert "ConfigMap" in SKIPPED_KINDS and "EnvoyFilter" in SKIPPED_KINDS
    manifests = load_manifests(write(tmp_path, """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec: {host: "*", trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
"""))
    assert len(manifests.skipped) == 2
    message = refusal(tmp_path, """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec: {hosts: [example.com]}
""")
    assert "ServiceEntry ext: kind ServiceEntry not supported by the local gateway" in message


def test_a_policy_of_a_cluster_only_deployment_is_skipped_with_it(tmp_path: Path) -> None:
    manifests = load_manifests(write(tmp_path, """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: redis, namespace: smartgrid}
spec:
  selector: {matchLabels: {app: redis}}
  rules: [{to: [{operation: {ports: ["6379"]}}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis, namespace: smartgrid}
spec: {template: {metadata: {labels: {app: redis}}}}
"""))
    assert manifests.policies == []
    assert "selects the cluster-only Deployment redis" in manifests.skipped[0]
    # Without the Deployment, the selector picks nothing the local gateway knows: refused.
    message = refusal(tmp_path, """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: redis, namespace: smartgrid}
spec:
  selector: {matchLabels: {app: redis}}
  rules: [{}]
""")
    assert ": AuthorizationPolicy redis: spec.selector.matchLabels: expected labels of a workload" in message


def test_a_virtual_service_must_name_a_gateway_of_the_files(tmp_path: Path) -> None:
    message = refusal(tmp_path, VIRTUAL_SERVICE)
    assert ": VirtualService api: spec.gateways[0]: expected a Gateway of the manifests, found none named 'gw'" \
        in message


def test_durations_and_retry_defaults(tmp_path: Path) -> None:
    manifests = load_manifests(write(tmp_path, GATEWAY + "---" + VIRTUAL_SERVICE + """
      timeout: 1m30s
    - name: b
      timeout: 250ms
      retries: {attempts: 3, perTryTimeout: 0.5s, retryOn: "gateway-error,409"}
      route: [{destination: {host: b}}]
"""))
    first, second = manifests.bound()[0].routes
    assert first.timeout_s == 90.0
    assert (first.retries.attempts, first.retries.statuses, first.retries.on_connect_failure) == (2, {503}, True)
    assert second.timeout_s == 0.25
    assert second.retries.attempts == 3 and second.retries.per_try_timeout_s == 0.5
    assert second.retries.statuses == {502, 503, 504, 409}
