"""Which workload a RequestAuthentication or AuthorizationPolicy applies to.

The local gateway knows two kinds of workload: a Knative Service's pods (namespace of the Service,
label `serving.knative.dev/service: <name>`, which Knative Serving puts on every pod), and the ingress
gateway itself (namespace `istio-system`, the labels its Gateway resources select, e.g. `istio:
ingressgateway`). A policy without `selector` applies to every workload of its namespace; one in the
root namespace (`istio-system`) without selector to every workload of the mesh, with a selector to the
workloads of any namespace carrying those labels. A selector naming labels neither kind has is refused
at start (it would select nothing here, maybe something on a cluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from local.gateway.spec import Node

SERVICE_LABEL = "serving.knative.dev/service"
ROOT_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-system"


@dataclass(frozen=True)
class Workload:
    """Pods as a proxy sees them: namespace and labels."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def service(cls, name: str, namespace: str) -> Workload:
        return cls(namespace, {SERVICE_LABEL: name})


@dataclass(frozen=True)
class Selection:
    """The namespace a policy lives in and the labels it selects (none: all of the namespace)."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    node: Node | None = None

    def applies_to(self, workload: Workload) -> bool:
        if self.namespace != workload.namespace and self.namespace != ROOT_NAMESPACE:
            return False
        if self.namespace == ROOT_NAMESPACE and not self.labels:
            return True
        return all(workload.labels.get(key) == value for key, value in self.labels.items())

    def check(self, gateway_labels: list[Mapping[str, str]]) -> None:
        """Refuse a selector that selects no kind of workload the local gateway knows."""
        if not self.labels or self.node is None:
            return
        if set(self.labels) == {SERVICE_LABEL}:
            return
        if self.namespace in (GATEWAY_NAMESPACE, ROOT_NAMESPACE) and any(
                all(labels.get(k) == v for k, v in self.labels.items()) for labels in gateway_labels):
            return
        known = [f"{SERVICE_LABEL}: <service>"] + [
            f"{', '.join(f'{k}: {v}' for k, v in labels.items())} (the ingress gateway, in {GATEWAY_NAMESPACE})"
            for labels in gateway_labels]
        raise self.node.error(f"expected labels of a workload the local gateway knows ({'; '.join(known)}), "
                              f"found {dict(self.labels)}")


def parse_selection(selector: Node | None, namespace: str) -> Selection:
    if selector is None:
        return Selection(namespace)
    labels = selector.fields(("matchLabels",)).get("matchLabels")
    if labels is None:
        return Selection(namespace)
    values = {key: value.text() for key, value in labels.fields(tuple(labels.value or ())).items()}
    return Selection(namespace, values, labels)
