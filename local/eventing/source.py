"""KafkaSource: a raw Kafka record turned into a CloudEvent exactly as Knative does."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from local.eventing.manifests import KafkaSource
from shared.cloudevents import SPEC_VERSION, CloudEvent, from_kafka, validate

KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
_EXTENSION_NAME = re.compile(r"[^a-z0-9]")


def record_to_event(source: KafkaSource, message: Message) -> CloudEvent:
    """The CloudEvent for a record: passed through when it is one, else `dev.knative.kafka.event`."""
    headers = message.headers() or []
    event = from_kafka(headers, message.value())
    if event is None:
        event = _wrap(source, message, headers)
    if source.ce_overrides:
        event = event.with_attributes(**source.ce_overrides)
    return event


def _wrap(source: KafkaSource, message: Message, headers: list[tuple[str, bytes | None]]) -> CloudEvent:
    partition, offset = message.partition(), message.offset()
    attributes = {
        "specversion": SPEC_VERSION,
        "id": f"partition:{partition}/offset:{offset}",
        "source": f"/apis/v1/namespaces/{source.namespace}/kafkasources/{source.name}#{message.topic()}",
        "type": KAFKA_EVENT_TYPE,
        "subject": f"partition:{partition}#{offset}",
    }
    timestamp_type, timestamp_ms = message.timestamp()
    if timestamp_type != TIMESTAMP_NOT_AVAILABLE:
        attributes["time"] = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    key = message.key()
    if key is not None:
        attributes["key"] = key.decode("utf-8", "replace")
    for name, value in headers:
        text = value.decode("utf-8", "replace") if value is not None else ""
        if name.lower() == "content-type":
            attributes["datacontenttype"] = text
            continue
        extension = "kafkaheader" + _EXTENSION_NAME.sub("", name.lower())
        attributes[extension] = text
    return validate(attributes, message.value())
