"""AuthorizationPolicy, evaluated at the destination workload like Istio's RBAC filter.

For a workload, the DENY policies are checked first: any matching rule denies. Then, if any ALLOW
policy selects the workload, a request no ALLOW rule matches is denied (a policy with `spec: {}` allows
nothing); with no ALLOW policy it is allowed. Denied: 403 `RBAC: access denied`. CUSTOM and AUDIT
actions are refused at start.

A rule matches when each of its parts does: `from` (any source), `to` (any operation), `when` (every
condition). Within a source or an operation every field given must hold: a field holds when one of its
values matches; a `not` field when none does. Values match exactly, by prefix (`abc*`), by suffix
(`*abc`), or any present value (`*`). Supported:
- source: `principals`, `requestPrincipals`, `namespaces` and their `not` forms (the gateway's own
  traffic comes from `cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account` in
  `istio-system`);
- operation: `methods`, `paths` (after the VirtualService's rewrite) and their `not` forms;
- when: `request.auth.claims[<name>]` (nested: `[a][b]`; a list claim matches by any element),
  `request.auth.principal`, `request.auth.audiences`, `request.auth.presenter`,
  `request.headers[<name>]`, `source.principal`, `source.namespace`, with `values` / `notValues`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.gateway.authn import RequestAuth
from local.gateway.selectors import Selection, Workload, parse_selection
from local.gateway.spec import Node

DENIED_BODY = "RBAC: access denied"
_CLAIM_KEY = re.compile(r"request\.auth\.claims((?:\[[^\[\]]+\])+)")
_HEADER_KEY = re.compile(r"request\.headers\[([^\[\]]+)\]")


@dataclass(frozen=True)
class Context:
    """What a rule can ask of a request, at its destination."""

    method: str
    path: str
    headers: Mapping[str, str]
    auth: RequestAuth | None
    source_principal: str
    source_namespace: str


@dataclass(frozen=True)
class Pattern:
    """An Istio authorization value: exact, `prefix*`, `*suffix` or `*`."""

    text: str

    def matches(self, value: str) -> bool:
        if self.text == "*":
            return value != ""
        if self.text.endswith("*"):
            return value.startswith(self.text[:-1])
        if self.text.startswith("*"):
            return value.endswith(self.text[1:])
        return value == self.text


Getter = Callable[[Context], list[str]]


@dataclass(frozen=True)
class Field:
    """One field of a source, an operation or a condition: a getter and its values (or not-values)."""

    get: Getter
    values: tuple[Pattern, ...] | None = None
    not_values: tuple[Pattern, ...] | None = None

    def holds(self, context: Context) -> bool:
        found = self.get(context)
        if self.values is not None and not any(p.matches(v) for v in found for p in self.values):
            return False
        return self.not_values is None or not any(p.matches(v) for v in found for p in self.not_values)


@dataclass(frozen=True)
class Rule:
    sources: tuple[tuple[Field, ...], ...]  # any source; each source: all its fields
    operations: tuple[tuple[Field, ...], ...]
    conditions: tuple[Field, ...]

    def matches(self, context: Context) -> bool:
        return ((not self.sources or any(all(f.holds(context) for f in source) for source in self.sources))
                and (not self.operations or any(all(f.holds(context) for f in op) for op in self.operations))
                and all(condition.holds(context) for condition in self.conditions))


@dataclass(frozen=True)
class Policy:
    name: str
    selection: Selection
    action: str
    rules: tuple[Rule, ...]
    origin: str

    def matches(self, context: Context) -> bool:
        return any(rule.matches(context) for rule in self.rules)


def decide(policies: list[Policy], context: Context) -> bool:
    """True when the workload's policies allow the request."""
    allows = False
    for policy in policies:
        if policy.action == "DENY" and policy.matches(context):
            return False
    for policy in policies:
        if policy.action == "ALLOW":
            if policy.matches(context):
                return True
            allows = True
    return not allows


def policies_for(policies: list[Policy], workload: Workload) -> list[Policy]:
    return [policy for policy in policies if policy.selection.applies_to(workload)]


def parse_authorization_policy(node: Node, name: str, namespace: str) -> Policy:
    spec = node.fields(("selector", "action", "rules", "provider"))
    action = spec["action"].one_of(("ALLOW", "DENY", "CUSTOM", "AUDIT")) if "action" in spec else "ALLOW"
    if action in ("CUSTOM", "AUDIT") or "provider" in spec:
        where = spec["action"] if "action" in spec else spec["provider"]
        raise where.error(f"action {action} (an external authorizer or audit) not supported by the local "
                          "gateway: ALLOW and DENY are")
    rules = tuple(_parse_rule(item) for item in spec["rules"].items()) if "rules" in spec else ()
    return Policy(name, parse_selection(spec.get("selector"), namespace), action, rules, node.origin)


def _parse_rule(node: Node) -> Rule:
    fields = node.fields(("from", "to", "when"))
    sources = tuple(_parse_source(item) for item in fields["from"].items()) if "from" in fields else ()
    operations = tuple(_parse_operation(item) for item in fields["to"].items()) if "to" in fields else ()
    conditions = tuple(_parse_condition(item) for item in fields["when"].items()) if "when" in fields else ()
    return Rule(sources, operations, conditions)


_SOURCE_GETTERS: dict[str, Getter] = {
    "principals": lambda c: [c.source_principal],
    "requestPrincipals": lambda c: [c.auth.principal] if c.auth is not None else [],
    "namespaces": lambda c: [c.source_namespace],
}
_OPERATION_GETTERS: dict[str, Getter] = {
    "methods": lambda c: [c.method],
    "paths": lambda c: [c.path],
}


def _parse_source(node: Node) -> tuple[Field, ...]:
    source = node.fields(("source",)).get("source")
    if source is None:
        raise node.error("expected source, found none")
    return _parse_fields(source, _SOURCE_GETTERS)


def _parse_operation(node: Node) -> tuple[Field, ...]:
    operation = node.fields(("operation",)).get("operation")
    if operation is None:
        raise node.error("expected operation, found none")
    return _parse_fields(operation, _OPERATION_GETTERS)


def _parse_fields(node: Node, getters: dict[str, Getter]) -> tuple[Field, ...]:
    names = tuple(getters) + tuple("not" + name[0].upper() + name[1:] for name in getters)
    fields = node.fields(names)
    parsed = []
    for name, getter in getters.items():
        negative = "not" + name[0].upper() + name[1:]
        values = _patterns(fields[name]) if name in fields else None
        not_values = _patterns(fields[negative]) if negative in fields else None
        if values is not None or not_values is not None:
            parsed.append(Field(getter, values, not_values))
    return tuple(parsed)


def _patterns(node: Node) -> tuple[Pattern, ...]:
    patterns = []
    for item in node.items():
        text = item.text()
        if "{" in text:
            raise item.error("path templates ({*}, {**}) not supported by the local gateway")
        if "*" in text.strip("*") or text.startswith("*") and text.endswith("*") and text != "*":
            raise item.error(f"expected an exact value, prefix*, *suffix or *, found {text!r}")
        patterns.append(Pattern(text))
    return tuple(patterns)


def _parse_condition(node: Node) -> Field:
    fields = node.fields(("key", "values", "notValues"))
    if "key" not in fields:
        raise node.error("expected key, found none")
    getter = _condition_getter(fields["key"])
    values = _patterns(fields["values"]) if "values" in fields else None
    not_values = _patterns(fields["notValues"]) if "notValues" in fields else None
    if values is None and not_values is None:
        raise node.error("expected values or notValues, found neither")
    return Field(getter, values, not_values)


def _condition_getter(node: Node) -> Getter:
    key = node.text()
    claim = _CLAIM_KEY.fullmatch(key)
    if claim:
        path = re.findall(r"\[([^\[\]]+)\]", claim.group(1))
        return lambda c: _claim(c.auth.claims, path) if c.auth is not None else []
    header = _HEADER_KEY.fullmatch(key)
    if header:
        name = header.group(1).lower()
        return lambda c: [c.headers[name]] if name in c.headers else []
    simple: dict[str, Getter] = {
        "request.auth.principal": lambda c: [c.auth.principal] if c.auth is not None else [],
        "request.auth.audiences": lambda c: list(c.auth.audiences) if c.auth is not None else [],
        "request.auth.presenter": lambda c: [c.auth.presenter] if c.auth is not None and c.auth.presenter else [],
        "source.principal": lambda c: [c.source_principal],
        "source.namespace": lambda c: [c.source_namespace],
    }
    if key not in simple:
        raise node.error(f"condition key {key!r} not supported by the local gateway (supported: "
                         f"request.auth.claims[...], request.headers[...], {', '.join(simple)})")
    return simple[key]


def _claim(claims: Mapping[str, Any], path: list[str]) -> list[str]:
    value: Any = claims
    for step in path:
        if not isinstance(value, Mapping) or step not in value:
            return []
        value = value[step]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
