"""Broker, Trigger, KafkaSource and PingSource manifests, read from the YAML that `kubectl apply` uses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import yaml

from local.eventing.filters import FilterError, compile_trigger_filter
from local.eventing.schedule import Schedule, ScheduleError
from shared.config import parse_duration

BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
DELIVERY_ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
DEFAULT_PARTITIONS = 10
DEFAULT_BACKOFF_DELAY_S = 1.0


class ManifestError(ValueError):
    """Raised when a manifest cannot be used; names the resource and the field."""


@dataclass(frozen=True)
class Destination:
    """Where events go: an absolute `uri`, or a `ref` to a Knative Service plus an optional path."""

    uri: str | None = None
    service: str | None = None
    namespace: str | None = None

    def resolve(self, service_urls: Mapping[str, str]) -> str:
        """The URL to POST to; a Service ref resolves through `service_urls` (name -> base URL)."""
        if self.service is None:
            assert self.uri is not None
            return self.uri
        base = service_urls.get(self.service)
        if base is None:
            raise ManifestError(f"no URL known for Knative Service '{self.service}' (ref of a subscriber or sink)")
        return urljoin(base, self.uri) if self.uri else base.rstrip("/")


@dataclass(frozen=True)
class DeliverySpec:
    """Knative's `spec.delivery`: retries, backoff, per-attempt timeout, dead-letter sink."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay_s: float = DEFAULT_BACKOFF_DELAY_S
    timeout_s: float | None = None
    dead_letter_sink: Destination | None = None

    def backoff(self, failed_attempt: int) -> float:
        """Seconds to wait after failed attempt n (1-based), with the Kafka data plane's formula."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * failed_attempt
        return self.backoff_delay_s * 2**failed_attempt


@dataclass(frozen=True)
class Broker:
    """A Kafka-class Broker and the topic that stores its events."""

    namespace: str
    name: str
    partitions: int = DEFAULT_PARTITIONS
    delivery: DeliverySpec | None = None

    @property
    def topic(self) -> str:
        return f"knative-broker-{self.namespace}-{self.name}"


@dataclass(frozen=True)
class Trigger:
    """A Trigger: which events of a broker go to which subscriber, and how."""

    namespace: str
    name: str
    broker: str
    subscriber: Destination
    matches: Callable[[Mapping[str, str]], bool] = field(compare=False)
    delivery: DeliverySpec | None = None
    ordered: bool = False

    @property
    def consumer_group(self) -> str:
        return f"knative-trigger-{self.namespace}-{self.name}"


@dataclass(frozen=True)
class KafkaSource:
    """A KafkaSource: raw records of some topics turned into CloudEvents for a sink."""

    namespace: str
    name: str
    topics: tuple[str, ...]
    sink: Destination
    consumer_group: str
    initial_offset: str = "latest"
    ordered: bool = True
    delivery: DeliverySpec | None = None
    ce_overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PingSource:
    """A PingSource: a fixed event sent to a sink at every tick of a cron schedule."""

    namespace: str
    name: str
    schedule: Schedule
    sink: Destination
    content_type: str | None = None
    data: bytes | None = None
    delivery: DeliverySpec | None = None


@dataclass(frozen=True)
class EventingConfig:
    """Every Broker, Trigger, KafkaSource and PingSource found in a set of manifests."""

    brokers: tuple[Broker, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    sources: tuple[KafkaSource, ...] = ()
    pings: tuple[PingSource, ...] = ()

    def broker(self, namespace: str, name: str) -> Broker | None:
        """The broker with that namespace and name, or None."""
        return next((b for b in self.brokers if b.namespace == namespace and b.name == name), None)


def load_manifests(path: Path, default_namespace: str = "default") -> EventingConfig:
    """Read every YAML document under `path` (a file or a folder) into an EventingConfig."""
    documents = list(_documents(path))
    config_maps = {
        (_namespace(doc, default_namespace), doc["metadata"]["name"]): doc.get("data") or {}
        for _, doc in documents
        if doc.get("kind") == "ConfigMap"
    }
    brokers, triggers, sources, pings = [], [], [], []
    for origin, doc in documents:
        kind = doc.get("kind")
        try:
            if kind == "Broker":
                brokers.append(_broker(doc, default_namespace, config_maps))
            elif kind == "Trigger":
                triggers.append(_trigger(doc, default_namespace))
            elif kind == "KafkaSource":
                sources.append(_kafka_source(doc, default_namespace))
            elif kind == "PingSource":
                pings.append(_ping_source(doc, default_namespace))
        except (ManifestError, FilterError, ScheduleError) as error:
            raise ManifestError(f"{origin}: {kind} '{_name(doc)}': {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise ManifestError(f"{origin}: {kind} '{_name(doc)}': malformed ({error!r})") from None
    config = EventingConfig(tuple(brokers), tuple(triggers), tuple(sources), tuple(pings))
    for trigger in config.triggers:
        if config.broker(trigger.namespace, trigger.broker) is None:
            raise ManifestError(
                f"Trigger '{trigger.namespace}/{trigger.name}': broker '{trigger.broker}' is not defined"
            )
    return config


def _documents(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    for file in files:
        if file.name.startswith("kustomization."):
            continue
        with open(file) as stream:
            for doc in yaml.safe_load_all(stream):
                if isinstance(doc, dict) and doc.get("kind"):
                    yield str(file), doc


def _name(doc: Mapping[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name", "?"))


def _namespace(doc: Mapping[str, Any], default: str) -> str:
    return (doc.get("metadata") or {}).get("namespace") or default


def _annotations(doc: Mapping[str, Any]) -> Mapping[str, str]:
    return (doc.get("metadata") or {}).get("annotations") or {}


def _broker(doc: dict[str, Any], default_ns: str, config_maps: Mapping[tuple[str, str], Mapping[str, str]]) -> Broker:
    namespace = _namespace(doc, default_ns)
    broker_class = _annotations(doc).get(BROKER_CLASS_ANNOTATION, "Kafka")
    if broker_class != "Kafka":
        raise ManifestError(f"{BROKER_CLASS_ANNOTATION}: expected 'Kafka', found '{broker_class}'")
    spec = doc.get("spec") or {}
    partitions = DEFAULT_PARTITIONS
    config_ref = spec.get("config")
    if config_ref and config_ref.get("kind", "ConfigMap") == "ConfigMap":
        data = config_maps.get((config_ref.get("namespace") or namespace, config_ref["name"]), {})
        partitions = int(data.get("default.topic.partitions", DEFAULT_PARTITIONS))
    return Broker(namespace, doc["metadata"]["name"], partitions, _delivery(spec.get("delivery"), namespace))


def _trigger(doc: dict[str, Any], default_ns: str) -> Trigger:
    namespace = _namespace(doc, default_ns)
    spec = doc["spec"]
    order = _annotations(doc).get(DELIVERY_ORDER_ANNOTATION, "unordered")
    if order not in ("ordered", "unordered"):
        raise ManifestError(f"{DELIVERY_ORDER_ANNOTATION}: expected 'ordered' or 'unordered', found '{order}'")
    return Trigger(
        namespace=namespace,
        name=doc["metadata"]["name"],
        broker=spec.get("broker", "default"),
        subscriber=_destination(spec.get("subscriber"), namespace, "spec.subscriber"),
        matches=compile_trigger_filter(spec),
        delivery=_delivery(spec.get("delivery"), namespace),
        ordered=order == "ordered",
    )


def _kafka_source(doc: dict[str, Any], default_ns: str) -> KafkaSource:
    namespace = _namespace(doc, default_ns)
    name = doc["metadata"]["name"]
    spec = doc["spec"]
    topics = spec.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
        raise ManifestError(f"spec.topics: expected a list of at least one topic name, found {topics!r}")
    initial_offset = spec.get("initialOffset", "latest")
    if initial_offset not in ("latest", "earliest"):
        raise ManifestError(f"spec.initialOffset: expected 'latest' or 'earliest', found '{initial_offset}'")
    ordering = spec.get("ordering", "ordered")
    if ordering not in ("ordered", "unordered"):
        raise ManifestError(f"spec.ordering: expected 'ordered' or 'unordered', found '{ordering}'")
    return KafkaSource(
        namespace=namespace,
        name=name,
        topics=tuple(topics),
        sink=_destination(spec.get("sink"), namespace, "spec.sink"),
        consumer_group=spec.get("consumerGroup") or f"knative-kafka-source-{namespace}-{name}",
        initial_offset=initial_offset,
        ordered=ordering == "ordered",
        delivery=_delivery(spec.get("delivery"), namespace),
        ce_overrides=dict((spec.get("ceOverrides") or {}).get("extensions") or {}),
    )


def _ping_source(doc: dict[str, Any], default_ns: str) -> PingSource:
    namespace = _namespace(doc, default_ns)
    spec = doc["spec"]
    schedule = spec.get("schedule")
    if not isinstance(schedule, str):
        raise ManifestError(f"spec.schedule: expected a cron expression, found {schedule!r}")
    return PingSource(
        namespace=namespace,
        name=doc["metadata"]["name"],
        schedule=Schedule.parse(schedule, spec.get("timezone")),
        sink=_destination(spec.get("sink"), namespace, "spec.sink"),
        content_type=spec.get("contentType"),
        data=_ping_data(spec),
        delivery=_delivery(spec.get("delivery"), namespace),
    )


def _ping_data(spec: Mapping[str, Any]) -> bytes | None:
    """`spec.data` as UTF-8, or `spec.dataBase64` decoded; never both."""
    text, encoded = spec.get("data"), spec.get("dataBase64")
    if text is not None and encoded is not None:
        raise ManifestError("spec.data: expected either `data` or `dataBase64`, found both")
    if encoded is None:
        return None if text is None else str(text).encode()
    try:
        return base64.b64decode(str(encoded), validate=True)
    except binascii.Error:
        raise ManifestError(f"spec.dataBase64: expected base64 text, found {encoded!r}") from None


def _destination(spec: Mapping[str, Any] | None, namespace: str, where: str) -> Destination:
    if not spec:
        raise ManifestError(f"{where}: expected a `uri` or a `ref`")
    ref, uri = spec.get("ref"), spec.get("uri")
    absolute = bool(uri) and bool(urlparse(uri).scheme)
    if ref:
        if ref.get("kind", "Service") != "Service":
            raise ManifestError(f"{where}.ref.kind: expected 'Service', found '{ref.get('kind')}'")
        if absolute:
            raise ManifestError(f"{where}.uri: expected a relative URI beside a `ref`, found '{uri}'")
        return Destination(uri, ref["name"], ref.get("namespace") or namespace)
    if not uri:
        raise ManifestError(f"{where}: expected a `uri` or a `ref`")
    if not absolute:
        raise ManifestError(f"{where}.uri: expected an absolute URI when there is no `ref`, found '{uri}'")
    return Destination(uri=uri)


def _delivery(spec: Mapping[str, Any] | None, namespace: str) -> DeliverySpec | None:
    if not spec:
        return None
    policy = spec.get("backoffPolicy", "exponential")
    if policy not in ("linear", "exponential"):
        raise ManifestError(f"spec.delivery.backoffPolicy: expected 'linear' or 'exponential', found '{policy}'")
    retry = spec.get("retry", 0)
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise ManifestError(f"spec.delivery.retry: expected a whole number >= 0, found {retry!r}")
    sink = spec.get("deadLetterSink")
    return DeliverySpec(
        retry=retry,
        backoff_policy=policy,
        backoff_delay_s=_seconds(spec, "backoffDelay", DEFAULT_BACKOFF_DELAY_S),
        timeout_s=_seconds(spec, "timeout", None),
        dead_letter_sink=_destination(sink, namespace, "spec.delivery.deadLetterSink") if sink else None,
    )


def _seconds(spec: Mapping[str, Any], key: str, default: float | None) -> float | None:
    if key not in spec:
        return default
    try:
        return parse_duration(str(spec[key]))
    except ValueError as error:
        raise ManifestError(f"spec.delivery.{key}: {error}") from None
