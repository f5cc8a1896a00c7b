"""Loading the Istio manifests the local gateway enforces, strictly.

Read: Gateway and VirtualService (networking.istio.io), RequestAuthentication and AuthorizationPolicy
(security.istio.io). Skipped, as cluster-only: SKIPPED_KINDS, and the RequestAuthentications and
AuthorizationPolicies whose selector picks the pods of such a skipped Deployment (the rate limit
service's, which the local gateway replaces: ratelimit.py). Any other kind, and any field the local
gateway does not implement, is refused with GatewayManifestError naming the file, the resource and the
field path (`knative/istio/gateway.yaml: VirtualService smartgrid-api: spec.http[2].fault: not supported
by the local gateway ...`).

Gateway: `selector` (the labels of the ingress gateway's pods, which policies in `istio-system` may
select) and `servers` (`port` with protocol HTTP or HTTPS, `hosts`, `tls` with mode SIMPLE,
`credentialName`, `minProtocolVersion`, `httpsRedirect`). Locally there is one listener: HTTPS with
SMARTGRID_GATEWAY_TLS_CERT / _KEY standing for `credentialName` (so no plain listener is left to
redirect), else plain HTTP standing for the HTTPS server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local.gateway.authn import RequestAuthentication, parse_request_authentication
from local.gateway.authz import Policy, parse_authorization_policy
from local.gateway.routing import VirtualService, parse_virtual_service
from local.gateway.spec import GatewayManifestError, Node

SKIPPED_KINDS = ("PeerAuthentication", "DestinationRule", "EnvoyFilter", "ServiceAccount", "Deployment", "Service",
                 "ConfigMap")
_GROUPS = {"Gateway": "networking.istio.io/", "VirtualService": "networking.istio.io/",
           "RequestAuthentication": "security.istio.io/", "AuthorizationPolicy": "security.istio.io/"}
_REPO = Path(__file__).resolve().parents[2]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TLS_VERSIONS = ("TLSV1_2", "TLSV1_3")


@dataclass(frozen=True)
class GatewayResource:
    """A Gateway: the ingress gateway's labels, its hosts and its TLS floor."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    hosts: tuple[str, ...]
    min_tls: str | None
    origin: str


@dataclass(frozen=True)
class Manifests:
    """Everything the local gateway enforces, in file order."""

    gateways: list[GatewayResource] = field(default_factory=list)
    virtual_services: list[VirtualService] = field(default_factory=list)
    authentications: list[RequestAuthentication] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def destinations(self) -> dict[str, list[str]]:
        """Service name -> the routes that send to it (of the VirtualServices bound to a Gateway)."""
        found: dict[str, list[str]] = {}
        for vs in self.bound():
            for route in vs.routes:
                for destination in route.destinations:
                    found.setdefault(destination.service, []).append(
                        f"route {route.name} of VirtualService {vs.namespace}/{vs.name}")
        return found

    def bound(self) -> list[VirtualService]:
        """The VirtualServices bound to a Gateway of the files (those of `mesh` only are the sidecars')."""
        names = {(gateway.namespace, gateway.name) for gateway in self.gateways}
        return [vs for vs in self.virtual_services
                if any(_gateway_ref(ref, vs.namespace) in names for ref in vs.gateways if ref != "mesh")]


def load_manifests(path: Path, *, default_namespace: str = "smartgrid") -> Manifests:
    """The manifests of a file, or of every `*.yaml` / `*.yml` of a folder (sorted)."""
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    if not files:
        raise GatewayManifestError(f"{_shown(path)}: expected Istio manifests (*.yaml), found none")
    documents: list[tuple[Any, str, int]] = []
    for file in files:
        try:
            loaded = list(yaml.load_all(file.read_text(encoding="utf-8"), Loader=_Loader))
        except (OSError, yaml.YAMLError) as error:
            raise GatewayManifestError(f"{_shown(file)}: expected readable YAML, found {error}") from None
        documents += [(document, _shown(file), index) for index, document in enumerate(loaded) if document is not None]
    cluster_only = _cluster_only_pods(documents, default_namespace)
    manifests = Manifests()
    for document, file, index in documents:
        _load_document(manifests, document, file, index, default_namespace, cluster_only)
    _check(manifests)
    return manifests


def _cluster_only_pods(documents: list[tuple[Any, str, int]], default_namespace: str) -> list[tuple[str, str, dict]]:
    """(namespace, Deployment name, pod labels) of the Deployments skipped as cluster-only."""
    pods = []
    for document, _, _ in documents:
        if isinstance(document, dict) and document.get("kind") == "Deployment":
            metadata = document.get("metadata") or {}
            template = ((document.get("spec") or {}).get("template") or {}).get("metadata") or {}
            labels = template.get("labels")
            if isinstance(labels, dict) and labels:
                pods.append((metadata.get("namespace") or default_namespace, str(metadata.get("name")), labels))
    return pods


def _selects_cluster_only(document: dict, namespace: str, pods: list[tuple[str, str, dict]]) -> str | None:
    """The Deployment a RequestAuthentication's or AuthorizationPolicy's selector picks among `pods`, if any."""
    selector = (document.get("spec") or {}).get("selector") if isinstance(document.get("spec"), dict) else None
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(labels, dict) or not labels:
        return None
    for pod_namespace, name, pod_labels in pods:
        if pod_namespace == namespace and all(pod_labels.get(k) == v for k, v in labels.items()):
            return name
    return None


def _load_document(manifests: Manifests, document: Any, file: str, index: int, default_namespace: str,
                   cluster_only: list[tuple[str, str, dict]]) -> None:
    top = Node(document, f"{file}: document {index}")
    if not isinstance(document, dict):
        raise top.error(f"expected a Kubernetes resource (a mapping), found {type(document).__name__}")
    if document.get("kind") in SKIPPED_KINDS:
        name = (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
        manifests.skipped.append(f"{file}: {document['kind']} {name}")
        return
    fields = top.fields(("apiVersion", "kind", "metadata", "spec"))
    kind = fields["kind"].text() if "kind" in fields else ""
    metadata = fields.get("metadata")
    meta = metadata.fields(("name", "namespace", "labels", "annotations")) if metadata is not None else {}
    if "name" not in meta:
        raise top.error("expected metadata.name, found none")
    name = meta["name"].text()
    namespace = meta["namespace"].text() if "namespace" in meta else default_namespace
    origin = f"{file}: {kind} {name}"
    if kind not in _GROUPS:
        raise GatewayManifestError(f"{origin}: kind {kind or '(none)'} not supported by the local gateway "
                                   f"(read: {', '.join(_GROUPS)}; skipped as cluster-only: {', '.join(SKIPPED_KINDS)})")
    api_version = fields["apiVersion"].value if "apiVersion" in fields else None
    if not isinstance(api_version, str) or not api_version.startswith(_GROUPS[kind]):
        raise Node(api_version, origin, "apiVersion").error(
            f"expected {_GROUPS[kind]}<version> for a {kind}, found {api_version!r}")
    if kind in ("RequestAuthentication", "AuthorizationPolicy"):
        deployment = _selects_cluster_only(document, namespace, cluster_only)
        if deployment is not None:
            manifests.skipped.append(f"{origin} (selects the cluster-only Deployment {deployment})")
            return
    spec = Node(fields["spec"].value if "spec" in fields else {}, origin, "spec")
    if kind == "Gateway":
        manifests.gateways.append(_parse_gateway(spec, name, namespace))
    elif kind == "VirtualService":
        manifests.virtual_services.append(parse_virtual_service(spec, name, namespace))
    elif kind == "RequestAuthentication":
        manifests.authentications.append(parse_request_authentication(spec, name, namespace))
    else:
        manifests.policies.append(parse_authorization_policy(spec, name, namespace))


def _parse_gateway(spec: Node, name: str, namespace: str) -> GatewayResource:
    fields = spec.fields(("selector", "servers"))
    selector = fields.get("selector")
    labels = {key: value.text() for key, value in
              (selector.fields(tuple(selector.value or ())) if selector is not None else {}).items()}
    hosts: list[str] = []
    min_tls = None
    for server in fields["servers"].items() if "servers" in fields else ():
        parts = server.fields(("port", "hosts", "tls", "name"))
        port = parts["port"].fields(("number", "name", "protocol")) if "port" in parts else {}
        if "protocol" in port:
            protocol = port["protocol"].one_of(("HTTP", "HTTPS", "HTTP2", "TCP", "TLS", "GRPC", "MONGO"))
            if protocol not in ("HTTP", "HTTPS"):
                raise port["protocol"].error(f"protocol {protocol} not supported by the local gateway (HTTP, HTTPS)")
        hosts.extend(parts["hosts"].texts() if "hosts" in parts else ())
        if "tls" in parts:
            tls = parts["tls"].fields(("mode", "credentialName", "minProtocolVersion", "httpsRedirect"))
            if "mode" in tls and tls["mode"].value != "SIMPLE":
                raise tls["mode"].error(f"TLS mode {tls['mode'].value!r} not supported by the local gateway (SIMPLE, "
                                        "with SMARTGRID_GATEWAY_TLS_CERT and _KEY)")
            if "minProtocolVersion" in tls:
                min_tls = tls["minProtocolVersion"].one_of(TLS_VERSIONS)
            if "httpsRedirect" in tls:
                tls["httpsRedirect"].flag()
    return GatewayResource(name, namespace, labels, tuple(hosts), min_tls, spec.origin)


def _gateway_ref(ref: str, namespace: str) -> tuple[str, str]:
    space, _, name = ref.rpartition("/")
    return space or namespace, name


def _check(manifests: Manifests) -> None:
    """References and selectors that must name something of the files."""
    names = {(gateway.namespace, gateway.name) for gateway in manifests.gateways}
    for vs in manifests.virtual_services:
        for index, ref in enumerate(vs.gateways):
            if ref != "mesh" and _gateway_ref(ref, vs.namespace) not in names:
                raise GatewayManifestError(f"{vs.origin}: spec.gateways[{index}]: expected a Gateway of the "
                                           f"manifests, found none named {ref!r}")
    gateway_labels = [gateway.labels for gateway in manifests.gateways if gateway.labels]
    for resource in (*manifests.authentications, *manifests.policies):
        resource.selection.check(gateway_labels)


def _shown(path: Path) -> str:
    """A file's name as errors show it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(_REPO))
    except ValueError:
        return str(path)
