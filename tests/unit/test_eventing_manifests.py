"""Broker, Trigger and KafkaSource manifests read by local/eventing/manifests.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from local.eventing.manifests import (
    BROKER_CLASS_ANNOTATION,
    DELIVERY_ORDER_ANNOTATION,
    DeliverySpec,
    Destination,
    EventingConfig,
    ManifestError,
    load_manifests,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NS = "grid"
SERVICE_URLS = {"meter": "http://127.0.0.1:8081/", "deadletter": "http://127.0.0.1:8099"}
EXPONENTIAL_DEFAULTS = DeliverySpec()


def metadata(name: str, namespace: str | None = NS, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def config_map(name: str = "kafka-broker-config", partitions: str = "3", namespace: str | None = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, namespace),
        "data": {"default.topic.partitions": partitions, "bootstrap.servers": "kafka:9092"},
    }


def broker(
    name: str = "default",
    namespace: str | None = NS,
    broker_class: str | None = "Kafka",
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    annotations = {BROKER_CLASS_ANNOTATION: broker_class} if broker_class else None
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": metadata(name, namespace, annotations),
        "spec": spec or {},
    }


def trigger(
    name: str = "readings",
    namespace: str | None = NS,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": metadata(name, namespace, annotations),
        "spec": {"broker": "default", "subscriber": {"uri": "http://sub.example/"}, **spec},
    }


def kafka_source(name: str = "meters", namespace: str | None = NS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "KafkaSource",
        "metadata": metadata(name, namespace),
        "spec": {
            "bootstrapServers": ["kafka:9092"],
            "topics": ["readings"],
            "sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "meter"}},
            **spec,
        },
    }


def load(tmp_path: Path, *documents: dict[str, Any], default_namespace: str = "default") -> EventingConfig:
    """Write the documents as one multi-document YAML file and load that folder."""
    (tmp_path / "manifests.yaml").write_text(yaml.safe_dump_all(documents))
    return load_manifests(tmp_path, default_namespace)


def load_error(tmp_path: Path, *documents: dict[str, Any]) -> str:
    """The message of the ManifestError that loading these documents raises."""
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, *documents)
    return str(caught.value)


def only_trigger_destination(tmp_path: Path, subscriber: dict[str, Any]) -> Destination:
    return load(tmp_path, broker(), trigger(subscriber=subscriber)).triggers[0].subscriber


# --- brokers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "partitions"),
    [
        pytest.param(
            [config_map(partitions="3"), broker(spec={"config": {"kind": "ConfigMap", "name": "kafka-broker-config"}})],
            3,
            id="configmap-same-namespace",
        ),
        pytest.param(
            [
                config_map(partitions="6", namespace="knative-eventing"),
                broker(spec={"config": {"name": "kafka-broker-config", "namespace": "knative-eventing"}}),
            ],
            6,
            id="configmap-other-namespace",
        ),
        pytest.param([broker()], 10, id="no-config"),
        pytest.param([broker(spec={"config": {"kind": "ConfigMap", "name": "absent"}})], 10, id="configmap-absent"),
    ],
)
def test_broker_partitions(tmp_path: Path, documents: list[dict[str, Any]], partitions: int) -> None:
    config = load(tmp_path, *documents)
    found = config.broker(NS, "default")
    assert found is not None
    assert found.partitions == partitions
    assert found.topic == f"knative-broker-{NS}-default"


def test_default_namespace(tmp_path: Path) -> None:
    config = load(tmp_path, broker(namespace=None), trigger(namespace=None), default_namespace="fallback")
    assert config.broker("fallback", "default") is not None
    assert config.triggers[0].namespace == "fallback"
    assert config.triggers[0].consumer_group == "knative-trigger-fallback-readings"


def test_broker_without_class_annotation_is_kafka(tmp_path: Path) -> None:
    assert load(tmp_path, broker(broker_class=None)).broker(NS, "default") is not None


def test_non_kafka_broker_class_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, broker(broker_class="MTChannelBasedBroker"))
    assert BROKER_CLASS_ANNOTATION in message
    assert "MTChannelBasedBroker" in message


def test_trigger_naming_an_undefined_broker(tmp_path: Path) -> None:
    message = load_error(tmp_path, broker(), trigger(broker="elsewhere"))
    assert "broker 'elsewhere' is not defined" in message


def test_trigger_and_broker_in_different_namespaces(tmp_path: Path) -> None:
    message = load_error(tmp_path, broker(namespace="other"), trigger())
    assert "is not defined" in message


def test_files_in_subfolders_and_kustomization_skipped(tmp_path: Path) -> None:
    (tmp_path / "brokers").mkdir()
    (tmp_path / "brokers" / "broker.yml").write_text(yaml.safe_dump(broker()))
    (tmp_path / "kustomization.yaml").write_text("kind: Kustomization\nresources: [brokers/broker.yml]\n")
    (tmp_path / "trigger.yaml").write_text("---\n" + yaml.safe_dump(trigger()) + "---\n# empty document\n")
    config = load_manifests(tmp_path)
    assert [b.name for b in config.brokers] == ["default"]
    assert [t.name for t in config.triggers] == ["readings"]


def test_malformed_document_names_the_resource(tmp_path: Path) -> None:
    document = trigger()
    del document["spec"]
    assert "Trigger 'readings': malformed" in load_error(tmp_path, broker(), document)


# --- destinations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscriber", "destination", "url"),
    [
        pytest.param(
            {"uri": "http://sub.example/hook"},
            Destination(uri="http://sub.example/hook"),
            "http://sub.example/hook",
            id="uri",
        ),
        pytest.param(
            {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "meter"}},
            Destination(service="meter", namespace=NS),
            "http://127.0.0.1:8081",
            id="ref",
        ),
        pytest.param(
            {"ref": {"kind": "Service", "name": "meter", "namespace": "other"}, "uri": "/hooks/reading"},
            Destination(uri="/hooks/reading", service="meter", namespace="other"),
            "http://127.0.0.1:8081/hooks/reading",
            id="ref-and-relative-path",
        ),
        pytest.param(
            {"ref": {"kind": "Service", "name": "meter"}, "uri": "hooks"},
            Destination(uri="hooks", service="meter", namespace=NS),
            "http://127.0.0.1:8081/hooks",
            id="ref-and-path-without-slash",
        ),
    ],
)
def test_subscriber(tmp_path: Path, subscriber: dict[str, Any], destination: Destination, url: str) -> None:
    found = only_trigger_destination(tmp_path, subscriber)
    assert found == destination
    assert found.resolve(SERVICE_URLS) == url


def test_ref_to_an_unknown_service_raises_on_resolve(tmp_path: Path) -> None:
    found = only_trigger_destination(tmp_path, {"ref": {"kind": "Service", "name": "nobody"}})
    with pytest.raises(ManifestError, match="nobody"):
        found.resolve(SERVICE_URLS)


@pytest.mark.parametrize(
    ("subscriber", "message"),
    [
        pytest.param({}, "spec.subscriber", id="empty"),
        pytest.param({"uri": ""}, "spec.subscriber", id="empty-uri"),
        pytest.param(
            {"ref": {"kind": "Broker", "name": "default"}}, "spec.subscriber.ref.kind", id="ref-not-a-service"
        ),
        pytest.param(
            {"ref": {"kind": "Service", "name": "meter"}, "uri": "http://elsewhere.example/"},
            "spec.subscriber",
            id="ref-and-absolute-uri",
        ),
        pytest.param(
            {"uri": "/hooks/reading"},
            "spec.subscriber",
            id="relative-uri-without-ref",
        ),
    ],
)
def test_bad_subscriber(tmp_path: Path, subscriber: dict[str, Any], message: str) -> None:
    document = trigger(subscriber=subscriber)
    assert message in load_error(tmp_path, broker(), document)


def test_missing_subscriber(tmp_path: Path) -> None:
    document = trigger()
    del document["spec"]["subscriber"]
    assert "spec.subscriber" in load_error(tmp_path, broker(), document)


# --- delivery -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param({}, None, id="empty"),
        pytest.param({"retry": 2}, DeliverySpec(retry=2), id="defaults"),
        pytest.param(
            {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S", "timeout": "PT10S"},
            DeliverySpec(retry=3, backoff_policy="linear", backoff_delay_s=0.2, timeout_s=10.0),
            id="linear-iso8601",
        ),
        pytest.param(
            {"retry": 0, "backoffPolicy": "exponential", "backoffDelay": "PT1M30S", "timeout": "PT0.5S"},
            DeliverySpec(retry=0, backoff_delay_s=90.0, timeout_s=0.5),
            id="exponential-minutes",
        ),
        pytest.param(
            {"deadLetterSink": {"uri": "http://dlq.example/"}},
            DeliverySpec(dead_letter_sink=Destination(uri="http://dlq.example/")),
            id="dead-letter-uri",
        ),
        pytest.param(
            {"retry": 1, "deadLetterSink": {"ref": {"kind": "Service", "name": "deadletter"}}},
            DeliverySpec(retry=1, dead_letter_sink=Destination(service="deadletter", namespace=NS)),
            id="dead-letter-ref",
        ),
    ],
)
def test_delivery_spec(tmp_path: Path, delivery: dict[str, Any] | None, expected: DeliverySpec | None) -> None:
    config = load(tmp_path, broker(spec={"delivery": delivery}), trigger(delivery=delivery))
    assert config.triggers[0].delivery == expected
    found = config.broker(NS, "default")
    assert found is not None and found.delivery == expected


@pytest.mark.parametrize(
    ("delivery", "field"),
    [
        pytest.param({"backoffDelay": "0.5s"}, "spec.delivery.backoffDelay", id="delay-not-iso8601"),
        pytest.param({"backoffDelay": 500}, "spec.delivery.backoffDelay", id="delay-number"),
        pytest.param({"timeout": "ten seconds"}, "spec.delivery.timeout", id="timeout-not-iso8601"),
        pytest.param({"backoffPolicy": "fibonacci"}, "spec.delivery.backoffPolicy", id="bad-policy"),
        pytest.param({"backoffPolicy": "Linear"}, "spec.delivery.backoffPolicy", id="policy-case"),
        pytest.param({"retry": -1}, "spec.delivery.retry", id="negative-retry"),
        pytest.param({"retry": "3"}, "spec.delivery.retry", id="retry-string"),
        pytest.param({"retry": 1.5}, "spec.delivery.retry", id="retry-float"),
        pytest.param(
            {"retry": True},
            "spec.delivery.retry",
            id="retry-bool",
        ),
        pytest.param({"deadLetterSink": {"ref": {"kind": "Service"}}}, "malformed", id="dead-letter-ref-no-name"),
    ],
)
@pytest.mark.parametrize("owner", ["Broker", "Trigger"])
def test_bad_delivery_names_the_field(tmp_path: Path, delivery: dict[str, Any], field: str, owner: str) -> None:
    if owner == "Broker":
        documents = [broker(spec={"delivery": delivery})]
        resource = "Broker 'default'"
    else:
        documents = [broker(), trigger(delivery=delivery)]
        resource = "Trigger 'readings'"
    message = load_error(tmp_path, *documents)
    assert field in message
    assert resource in message


@pytest.mark.parametrize(
    ("spec", "delays"),
    [
        pytest.param(DeliverySpec(backoff_policy="linear", backoff_delay_s=0.2), [0.2, 0.4, 0.6, 0.8], id="linear"),
        pytest.param(DeliverySpec(backoff_policy="exponential", backoff_delay_s=0.5), [1, 2, 4, 8], id="exponential"),
        pytest.param(EXPONENTIAL_DEFAULTS, [2, 4, 8, 16], id="defaults-exponential-1s"),
    ],
)
def test_backoff(spec: DeliverySpec, delays: list[float]) -> None:
    assert [spec.backoff(n) for n in range(1, len(delays) + 1)] == pytest.approx(delays)


def test_backoff_from_manifest(tmp_path: Path) -> None:
    delivery = {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S"}
    spec = load(tmp_path, broker(), trigger(delivery=delivery)).triggers[0].delivery
    assert spec is not None
    assert [spec.backoff(n) for n in range(1, spec.retry + 1)] == [1.0, 2.0, 4.0]


# --- ordering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "ordered"),
    [
        pytest.param(None, False, id="default-unordered"),
        pytest.param({DELIVERY_ORDER_ANNOTATION: "ordered"}, True, id="ordered"),
        pytest.param({DELIVERY_ORDER_ANNOTATION: "unordered"}, False, id="unordered"),
    ],
)
def test_delivery_order_annotation(tmp_path: Path, annotations: dict[str, str] | None, ordered: bool) -> None:
    assert load(tmp_path, broker(), trigger(annotations=annotations)).triggers[0].ordered is ordered


@pytest.mark.parametrize("value", ["Ordered", "fifo", ""])
def test_invalid_delivery_order(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, broker(), trigger(annotations={DELIVERY_ORDER_ANNOTATION: value}))
    assert DELIVERY_ORDER_ANNOTATION in message


def test_trigger_filter_errors_become_manifest_errors(tmp_path: Path) -> None:
    message = load_error(tmp_path, broker(), trigger(filters=[{"cesql": "type = 'x'"}]))
    assert "Trigger 'readings'" in message and "cesql" in message


def test_trigger_filter_is_compiled(tmp_path: Path) -> None:
    spec = {"filter": {"attributes": {"type": "smartgrid.reading"}}}
    found = load(tmp_path, broker(), trigger(**spec)).triggers[0]
    assert found.matches({"type": "smartgrid.reading"})
    assert not found.matches({"type": "smartgrid.alert"})


# --- KafkaSource ----------------------------------------------------------------------


def test_kafka_source_defaults(tmp_path: Path) -> None:
    (source,) = load(tmp_path, kafka_source()).sources
    assert source.namespace == NS
    assert source.topics == ("readings",)
    assert source.consumer_group == f"knative-kafka-source-{NS}-meters"
    assert source.initial_offset == "latest"
    assert source.ordered is True
    assert source.delivery is None
    assert source.ce_overrides == {}
    assert source.sink == Destination(service="meter", namespace=NS)


def test_kafka_source_explicit_values(tmp_path: Path) -> None:
    document = kafka_source(
        topics=["readings", "alerts"],
        consumerGroup="meters-cg",
        initialOffset="earliest",
        ordering="unordered",
        delivery={"retry": 2},
        ceOverrides={"extensions": {"team": "grid"}},
    )
    (source,) = load(tmp_path, document).sources
    assert source.topics == ("readings", "alerts")
    assert source.consumer_group == "meters-cg"
    assert source.initial_offset == "earliest"
    assert source.ordered is False
    assert source.delivery == DeliverySpec(retry=2)
    assert source.ce_overrides == {"team": "grid"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"topics": []}, "spec.topics", id="no-topics"),
        pytest.param({"topics": None}, "spec.topics", id="topics-null"),
        pytest.param({"initialOffset": "newest"}, "spec.initialOffset", id="bad-initial-offset"),
        pytest.param({"ordering": "random"}, "spec.ordering", id="bad-ordering"),
        pytest.param({"sink": None}, "spec.sink", id="no-sink"),
        pytest.param({"delivery": {"retry": -2}}, "spec.delivery.retry", id="bad-delivery"),
        pytest.param(
            {"topics": "readings"},
            "spec.topics",
            id="topics-a-string",
        ),
    ],
)
def test_kafka_source_errors(tmp_path: Path, spec: dict[str, Any], field: str) -> None:
    message = load_error(tmp_path, kafka_source(**spec))
    assert field in message
    assert "KafkaSource 'meters'" in message


# --- the repository's own manifests ---------------------------------------------------


def test_repository_eventing_folder_parses() -> None:
    config = load_manifests(REPO_ROOT / "eventing")
    found = config.broker("smartgrid", "smartgrid")
    assert found is not None
    assert found.topic == "knative-broker-smartgrid-smartgrid"
    assert found.partitions == 10
    assert found.delivery == DeliverySpec(
        retry=5,
        backoff_policy="exponential",
        backoff_delay_s=0.5,
        dead_letter_sink=Destination(service="deadletter", namespace="smartgrid"),
    )
    # The broker.yaml comment promises waits of 1, 2, 4, 8 and 16 s between the 6 attempts.
    assert [found.delivery.backoff(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    for trigger_ in config.triggers:
        assert config.broker(trigger_.namespace, trigger_.broker) is not None


def test_notify_gets_every_alert_event_and_none_of_its_own() -> None:
    (trigger_,) = [t for t in load_manifests(REPO_ROOT / "eventing").triggers if t.name == "notify-alerts"]
    assert trigger_.subscriber == Destination(service="notify", namespace="smartgrid")
    for change in ("raised", "updated", "acknowledged", "cleared"):
        assert trigger_.matches({"type": f"com.smartgrid.alert.{change}"})
    assert not trigger_.matches({"type": "com.smartgrid.notification.sent"})
    assert trigger_.delivery is not None and trigger_.delivery.dead_letter_sink == Destination(
        service="deadletter", namespace="smartgrid")
