"""Broker ingress: `POST /<namespace>/<broker>` stores a CloudEvent in the broker's topic."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from local.eventing.kafka import AsyncProducer, KafkaUnavailable
from local.eventing.manifests import EventingConfig
from shared.cloudevents import InvalidEvent, from_http, to_kafka

log = logging.getLogger("smartgrid.eventing.ingress")


def error_response(status: int, error: str, message: str, **details: Any) -> web.Response:
    """A JSON error body: what went wrong, and the field when one is to blame."""
    return web.json_response({"error": error, "message": message, **details}, status=status)


class Ingress:
    """Answers 202 once Kafka acknowledged the event; 400, 404, 405, 413 or 503 otherwise."""

    def __init__(self, config: EventingConfig, producer: AsyncProducer, max_event_bytes: int) -> None:
        self._config = config
        self._producer = producer
        self._max_event_bytes = max_event_bytes

    def application(self) -> web.Application:
        """The aiohttp application serving the ingress."""
        app = web.Application(client_max_size=self._max_event_bytes)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/{namespace}/{broker}", self._receive)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["broker"]
        if request.method != "POST":
            return error_response(405, "method not allowed", f"expected POST, found {request.method}")
        broker = self._config.broker(namespace, name)
        if broker is None:
            return error_response(404, "unknown broker", f"no broker '{name}' in namespace '{namespace}'")
        if request.content_length is not None and request.content_length > self._max_event_bytes:
            return self._too_large(request.content_length)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        try:
            event = from_http(request.headers, body)
        except InvalidEvent as error:
            return web.json_response(error.to_dict(), status=400)
        try:
            await self._producer.send(broker.topic, to_kafka(event))
        except KafkaUnavailable as error:
            log.error("ingress broker=%s/%s id=%s not stored: %s", namespace, name, event.id, error)
            return error_response(503, "broker unavailable", str(error))
        return web.Response(status=202)

    def _too_large(self, size: int | None) -> web.Response:
        found = f"{size} bytes" if size is not None else "more"
        return error_response(
            413, "event too large", f"expected at most {self._max_event_bytes} bytes, found {found}", field="body"
        )

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _unknown_path(self, request: web.Request) -> web.Response:
        return error_response(404, "unknown path", f"expected /<namespace>/<broker>, found {request.path}")
