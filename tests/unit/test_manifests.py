"""Validate the Kubernetes manifests under eventing/ and knative/ against upstream CRD schemas.

Custom resources are checked with jsonschema against the `openAPIV3Schema` of the matching
CustomResourceDefinition copied into ../shared/crds (see its README). Like `kubectl apply` with
strict field validation, fields a schema does not declare are errors unless the schema node has
`x-kubernetes-preserve-unknown-fields`. CEL rules (`x-kubernetes-validations`) are not evaluated.
Kubernetes' own kinds (ServiceAccount, Deployment, Service, ...) have no CRD: they are checked with the
upstream schemas the `kubernetes-validate` package bundles (strict), and skipped when it is not installed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

try:  # Kubernetes' built-in kinds: upstream OpenAPI schemas per release (optional test dependency)
    import kubernetes_validate
except ImportError:  # pragma: no cover - depends on the environment
    kubernetes_validate = None

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT.parent / "shared" / "crds"
LOCAL_CRD_DIR = Path(__file__).resolve().parent / "crds"  # the project's own schemas, for kinds CRD_DIR lacks
MANIFEST_DIRS = ("eventing", "knative")
KUSTOMIZATION = "kustomization.yaml"
CRD_HINT = "../shared/crds"
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The Kubernetes release whose built-in schemas check the core kinds (kubernetes-validate).
KUBERNETES_VERSION = "1.32"
# Kinds knowingly deployed without a schema to check them against, and why.
UNVALIDATED = {
    ("networking.istio.io/v1alpha3", "EnvoyFilter"):
        "Istio's EnvoyFilter CRD is not among the copies in ../shared/crds (its patches are raw Envoy "
        "configuration, which no CRD schema checks anyway)",
}

Key = tuple[str, str]  # (apiVersion, kind)
Schemas = dict[Key, tuple[dict[str, Any], bool]]  # -> (schema, namespaced)

_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}
CORE_SCHEMAS: Schemas = {
    ("v1", "Namespace"): (
        {"type": "object", "required": ["metadata"], "properties": {"metadata": _META}},
        False,
    ),
    ("v1", "ConfigMap"): (
        {
            "type": "object",
            "required": ["metadata"],
            "properties": {
                "metadata": _META,
                "data": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        True,
    ),
}


def _load_yaml_docs(path: Path) -> list[Any]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.load_all(fh, Loader=Loader) if doc is not None]


def _manifest_files() -> list[Path]:
    """YAML files under the manifest folders, kustomizations and ConfigMap data files excluded."""
    files = [p for d in MANIFEST_DIRS for p in (REPO_ROOT / d).rglob("*.y*ml")]
    data = set(_generated_from())
    return sorted(p for p in files if p.name != KUSTOMIZATION and p.resolve() not in data)


def _generated_from() -> list[Path]:
    """Files that kustomizations turn into ConfigMaps (configMapGenerator `files`): data, not manifests."""
    return [
        (kustomization.parent / entry.rpartition("=")[2]).resolve()
        for kustomization in _kustomizations()
        for generator in (_load_yaml_docs(kustomization)[0] or {}).get("configMapGenerator", [])
        for entry in generator.get("files", [])
    ]


def _kustomizations() -> list[Path]:
    """kustomization.yaml files under the manifest folders."""
    return sorted(p for d in MANIFEST_DIRS for p in (REPO_ROOT / d).rglob(KUSTOMIZATION))


def _documents() -> list[tuple[Path, int, Any]]:
    """(file, index, document) for every manifest document."""
    return [(p, i, doc) for p in _manifest_files() for i, doc in enumerate(_load_yaml_docs(p))]


def _rel(path: Path) -> str:
    """Path relative to the repo root, for test ids and messages."""
    return str(path.relative_to(REPO_ROOT))


def _doc_id(entry: tuple[Path, int, Any]) -> str:
    """Readable pytest id: path#index:Kind/name."""
    path, index, doc = entry
    kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc, dict) else "?"
    return f"{_rel(path)}#{index}:{kind}/{name}"


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    """Copy of a structural schema that rejects undeclared fields and honours `nullable`."""
    out = dict(node)
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    if out.get("x-kubernetes-embedded-resource"):
        out["properties"] = {**out.get("properties", {}), **_type_meta()}
    is_object = out.get("type") == "object" or "properties" in out
    open_ = "additionalProperties" in out or out.get("x-kubernetes-preserve-unknown-fields")
    if is_object and not open_:
        out["additionalProperties"] = False
    return out


def _type_meta() -> dict[str, Any]:
    """Fields the API server accepts on every object whatever its schema says."""
    string = {"type": "string"}
    return {"apiVersion": string, "kind": string, "metadata": {"type": "object"}}


def _crd_schemas(crd: dict[str, Any]) -> Schemas:
    """(apiVersion, kind) -> (strict schema, namespaced) for each version of one CRD."""
    spec = crd["spec"]
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    result: Schemas = {}
    for version in spec["versions"]:
        schema = _strict(version["schema"]["openAPIV3Schema"])
        schema["properties"] = {**schema.get("properties", {}), **_type_meta()}
        result[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = (schema, namespaced)
    return result


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    """Core schemas, every CRD schema in ../shared/crds, then tests/unit/crds for kinds it lacks."""
    if not CRD_DIR.is_dir():
        pytest.skip(f"upstream CRD copies not found at {CRD_DIR} (../shared/crds next to the repo)")
    found: Schemas = dict(CORE_SCHEMAS)
    for path in sorted(CRD_DIR.glob("*.yaml")):
        found.update(_file_schemas(path))
    for path in sorted(LOCAL_CRD_DIR.glob("*.json")):
        for key, schema in _file_schemas(path).items():
            found.setdefault(key, schema)
    return found


def _file_schemas(path: Path) -> Schemas:
    """The schemas of every CustomResourceDefinition in one file (YAML, or JSON as YAML)."""
    found: Schemas = {}
    for crd in _load_yaml_docs(path):
        if crd.get("kind") == "CustomResourceDefinition":
            found.update(_crd_schemas(crd))
    return found


class NoCoreValidator(Exception):
    """A built-in Kubernetes kind, but the kubernetes-validate package is not installed."""


def _is_builtin(api_version: str) -> bool:
    """True for Kubernetes' own API groups (v1, apps/v1, batch/v1, *.k8s.io/...), which have no CRD."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _schema_errors(doc: dict[str, Any], schemas: Schemas) -> list[str]:
    """Schema violations of one document; an unknown apiVersion+kind is itself an error. Raises
    NoCoreValidator for a built-in kind without a schema here when kubernetes-validate is missing."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in schemas and _is_builtin(key[0]):
        return _builtin_errors(doc)
    if key not in schemas:
        return [f"no schema for apiVersion={key[0]!r} kind={key[1]!r}: add its CRD to {CRD_HINT}"]
    validator = Draft7Validator(schemas[key][0])
    return [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def _builtin_errors(doc: dict[str, Any]) -> list[str]:
    """Violations of a built-in kind against the upstream schema of KUBERNETES_VERSION (strict: unknown
    fields are errors, as with kubectl's strict field validation)."""
    if kubernetes_validate is None:
        raise NoCoreValidator(f"{doc.get('kind')}: pip install kubernetes-validate to check built-in kinds")
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        kind = f"apiVersion={doc.get('apiVersion')!r} kind={doc.get('kind')!r}"
        return [f"no schema for {kind} in Kubernetes {KUBERNETES_VERSION}"]
    except kubernetes_validate.ValidationError as error:
        return [f"{_path(error.absolute_path)}: {error.message}"]
    return []


def _path(parts: Iterable[Any]) -> str:
    """Dotted JSON path of a validation error."""
    return ".".join(map(str, parts)) or "<root>"


def _kustomize_resources(kustomization: Path) -> list[Path]:
    """Resolved paths of a kustomization's `resources` entries."""
    data = _load_yaml_docs(kustomization)[0] or {}
    return [(kustomization.parent / entry).resolve() for entry in data.get("resources", [])]


@functools.cache
def _kustomize_namespaces() -> dict[Path, set[str]]:
    """File -> namespaces set on it by any kustomization that includes it, directly or not."""
    result: dict[Path, set[str]] = {}

    def walk(kustomization: Path, inherited: set[str]) -> None:
        ns = (_load_yaml_docs(kustomization)[0] or {}).get("namespace")
        names = inherited | ({ns} if ns else set())
        for res in _kustomize_resources(kustomization):
            if (res / KUSTOMIZATION).is_file():
                walk(res / KUSTOMIZATION, names)
            else:
                result.setdefault(res, set()).update(names)

    for kustomization in _kustomizations():
        walk(kustomization, set())
    return result


DOCUMENTS = _documents()


def test_manifests_exist() -> None:
    """The manifest folders hold at least the Broker and the Istio policies."""
    kinds = {doc.get("kind") for _, _, doc in DOCUMENTS if isinstance(doc, dict)}
    expected = {"Namespace", "ConfigMap", "Broker", "PeerAuthentication", "AuthorizationPolicy"}
    assert expected <= kinds, f"missing kinds: {expected - kinds}"


@pytest.mark.parametrize("entry", DOCUMENTS, ids=_doc_id)
def test_document_matches_schema(entry: tuple[Path, int, Any], schemas: Schemas) -> None:
    """Each document validates against the upstream schema of its apiVersion+kind."""
    _, _, doc = entry
    assert isinstance(doc, dict), "a manifest document must be a mapping"
    reason = UNVALIDATED.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if reason:
        pytest.skip(f"unvalidated: {reason}")
    try:
        errors = _schema_errors(doc, schemas)
    except NoCoreValidator as missing:
        pytest.skip(str(missing))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("entry", DOCUMENTS, ids=_doc_id)
def test_document_metadata(entry: tuple[Path, int, Any], schemas: Schemas) -> None:
    """Each document is named, and namespaced kinds get a namespace from the file or kustomize."""
    path, _, doc = entry
    meta = doc.get("metadata") or {}
    assert meta.get("name"), "metadata.name is required"
    known = schemas.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if known and known[1] and not meta.get("namespace"):
        inherited = _kustomize_namespaces().get(path.resolve())
        assert inherited, "namespaced kind without metadata.namespace or a kustomization namespace"


@pytest.mark.parametrize("kustomization", _kustomizations(), ids=_rel)
def test_kustomization_resources_exist(kustomization: Path) -> None:
    """Each `resources` entry is an existing file or a folder with its own kustomization."""
    missing = [
        str(res)
        for res in _kustomize_resources(kustomization)
        if not (res.is_file() or (res / KUSTOMIZATION).is_file())
    ]
    assert not missing, f"missing resources: {missing}"


def test_config_map_files_exist() -> None:
    """Each configMapGenerator file is there for kustomize to read."""
    assert all(path.is_file() for path in _generated_from())


def test_every_manifest_is_in_a_kustomization() -> None:
    """No manifest file is left out of `kubectl apply -k`."""
    listed = {res for k in _kustomizations() for res in _kustomize_resources(k)}
    orphans = [_rel(p) for p in _manifest_files() if p.resolve() not in listed]
    assert not orphans, f"not listed in any kustomization.yaml: {orphans}"


def _trigger(**spec: Any) -> dict[str, Any]:
    """A minimal valid Trigger with extra spec fields."""
    ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "x"}
    base = {"broker": "smartgrid", "subscriber": {"ref": ref}}
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": "t", "namespace": "smartgrid"},
        "spec": {**base, **spec},
    }


def test_validator_accepts_a_valid_trigger(schemas: Schemas) -> None:
    """Control for the negative tests: the minimal Trigger is valid."""
    assert _schema_errors(_trigger(delivery={"retry": 5}), schemas) == []


def test_validator_rejects_wrong_type(schemas: Schemas) -> None:
    """A string where the CRD wants an integer is caught."""
    errors = _schema_errors(_trigger(delivery={"retry": "five"}), schemas)
    assert any(e.startswith("spec.delivery.retry:") for e in errors), errors


def test_validator_rejects_unknown_field(schemas: Schemas) -> None:
    """A misspelt field under a closed schema node is caught (kubectl strict validation)."""
    trigger = _trigger()
    trigger["spec"]["subscriber"]["reff"] = trigger["spec"]["subscriber"].pop("ref")
    assert _schema_errors(trigger, schemas), "misspelt subscriber.reff was accepted"


def test_validator_rejects_unknown_kind(schemas: Schemas) -> None:
    """A kind with no CRD copy and no core schema fails instead of passing unvalidated."""
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert _schema_errors(doc, schemas) == [
        f"no schema for apiVersion='example.com/v1' kind='Widget': add its CRD to {CRD_HINT}"
    ]


def test_validator_checks_builtin_kinds(schemas: Schemas) -> None:
    """Built-in kinds are checked strictly against the upstream Kubernetes schemas."""
    if kubernetes_validate is None:
        pytest.skip("kubernetes-validate is not installed")
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"},
               "automountServiceAccountToken": False}
    assert _schema_errors(account, schemas) == []
    assert _schema_errors({**account, "automountServiceAccountTokens": False}, schemas)
    assert _schema_errors({**account, "automountServiceAccountToken": "no"}, schemas)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i", "portz": []}]}}}}
    assert any("portz" in error for error in _schema_errors(deployment, schemas))


def _ping_source(**spec: Any) -> dict[str, Any]:
    """A PingSource with the given spec."""
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": {"name": "p", "namespace": "smartgrid"},
        "spec": spec,
    }


def test_ping_source_schema(schemas: Schemas) -> None:
    """A PingSource needs a schedule and a sink, and misspelt fields are caught."""
    sink = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "weather"}}
    assert _schema_errors(_ping_source(schedule="*/10 * * * *", data="{}", sink=sink), schemas) == []
    assert _schema_errors(_ping_source(sink=sink), schemas)
    assert _schema_errors(_ping_source(schedule="* * * * *", sink=sink, jsonData="{}"), schemas)
    assert _schema_errors(_ping_source(schedule=5, sink=sink), schemas)


def test_configmap_values_must_be_strings(schemas: Schemas) -> None:
    """Unquoted numbers in a ConfigMap are rejected, as the API server does."""
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"n": 10}}
    assert _schema_errors(doc, schemas)


# --- the functions' Services: what they reference exists, identity is wired -------------------------

SERVICE_KEY = ("serving.knative.dev/v1", "Service")
CONFIG_MAP = "smartgrid-config"
# Functions that look devices up in the users service's registry, with their own OAuth client
# (shared/auth/wiring.py own_token; client id function-<name>, role registry-reader).
REGISTRY_READERS = {"ingest", "process", "detect", "analytics"}


def _services() -> dict[str, dict[str, Any]]:
    """The Knative Services of the manifests by name."""
    return {doc["metadata"]["name"]: doc for _, _, doc in DOCUMENTS
            if isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) == SERVICE_KEY}


def _container(service: dict[str, Any]) -> dict[str, Any]:
    (container,) = service["spec"]["template"]["spec"]["containers"]
    return container


def _env(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A Service's environment variables by name."""
    return {entry["name"]: entry for entry in _container(service).get("env", [])}


def _service_refs(node: Any) -> list[str]:
    """Names of every `ref` to a Knative Service anywhere under `node`."""
    if isinstance(node, list):
        return [name for item in node for name in _service_refs(item)]
    if not isinstance(node, dict):
        return []
    found = []
    ref = node.get("ref")
    if isinstance(ref, dict) and ref.get("kind") == "Service" and ref.get("apiVersion", SERVICE_KEY[0]) == SERVICE_KEY[0]:
        found.append(ref["name"])
    return found + [name for key, value in node.items() if key != "ref" for name in _service_refs(value)]


SERVICES = _services()


def test_every_referenced_service_is_defined() -> None:
    """Triggers, sources and dead-letter sinks point at Knative Services that knative/ defines."""
    missing = sorted({f"{doc['kind']}/{doc['metadata']['name']} -> {name}"
                      for _, _, doc in DOCUMENTS if isinstance(doc, dict)
                      for name in _service_refs(doc.get("spec")) if name not in SERVICES})
    assert not missing, f"refs to Services knative/services/ does not define: {missing}"


def test_config_map_keys_exist() -> None:
    """Every configMapKeyRef of a Service names a key of the smartgrid-config ConfigMap."""
    (config,) = [doc for _, _, doc in DOCUMENTS if doc.get("kind") == "ConfigMap"
                 and doc["metadata"]["name"] == CONFIG_MAP]
    missing = [f"{name}: {var} -> {ref['key']}" for name, service in SERVICES.items()
               for var, entry in _env(service).items()
               for ref in [(entry.get("valueFrom") or {}).get("configMapKeyRef")] if ref
               if ref["name"] != CONFIG_MAP or ref["key"] not in config["data"]]
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_verifies_tokens_of_the_issuer(name: str) -> None:
    """Each function gets the issuer (and, but for the issuer itself, the cluster-local JWKS) from the
    ConfigMap, and K_SINK: its guard reports refused requests to the broker as audit events."""
    env = _env(SERVICES[name])
    assert env["SMARTGRID_AUTH_ISSUER"]["valueFrom"] == {"configMapKeyRef": {"name": CONFIG_MAP, "key": "auth-issuer"}}
    if name != "users":
        assert env["SMARTGRID_AUTH_JWKS_URL"]["valueFrom"] == {
            "configMapKeyRef": {"name": CONFIG_MAP, "key": "auth-jwks-url"}}
    assert env["K_SINK"]["value"].startswith("http://kafka-broker-ingress.knative-eventing.svc.cluster.local/")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_registry_readers_have_their_own_client(name: str) -> None:
    """Registry readers get SMARTGRID_CLIENT_ID/SECRET from their Secret smartgrid-client-<name>; others none."""
    env = _env(SERVICES[name])
    if name not in REGISTRY_READERS:
        assert "SMARTGRID_CLIENT_ID" not in env and "SMARTGRID_CLIENT_SECRET" not in env
        return
    for var, key in (("SMARTGRID_CLIENT_ID", "client-id"), ("SMARTGRID_CLIENT_SECRET", "client-secret")):
        assert env[var]["valueFrom"] == {"secretKeyRef": {"name": f"smartgrid-client-{name}", "key": key}}


def test_users_service_wiring() -> None:
    """The issuer has its database and its signing keys: the Secret mounted read-only as a whole folder
    (no subPath, so a rotated Secret reaches the pod) at SMARTGRID_AUTH_KEYS_DIR."""
    users = SERVICES["users"]
    env = _env(users)
    assert env["FUNCTION"]["value"] == "users"
    assert env["SMARTGRID_DSN_USERS"]["valueFrom"] == {"secretKeyRef": {"name": "smartgrid-db-users", "key": "dsn"}}
    volumes = {v["name"]: v for v in users["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in _container(users)["volumeMounts"]
                if volumes[m["name"]].get("secret", {}).get("secretName") == "smartgrid-auth-keys"]
    assert mount["mountPath"] == env["SMARTGRID_AUTH_KEYS_DIR"]["value"]
    assert mount.get("readOnly") is True and "subPath" not in mount
