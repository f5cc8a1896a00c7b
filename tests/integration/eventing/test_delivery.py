"""Delivery: retries and backoff timing, which statuses are retried, dead letters, replies."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from aiohttp import web

from shared.cloudevents import to_http_binary
from tests.integration.eventing.conftest import (
    broker_yaml,
    event,
    new_event,
    post_event,
    trigger_yaml,
)
from tests.integration.eventing.subscriber import Received, Subscriber

pytestmark = pytest.mark.integration


def delivery(retry: int, policy: str = "exponential", delay: str = "PT0.05S", sink: str = "") -> str:
    """A `delivery:` block indented for a spec."""
    dead_letter = f"\n    deadLetterSink: {{uri: \"{sink}\"}}" if sink else ""
    return f"  delivery:\n    retry: {retry}\n    backoffPolicy: {policy}\n    backoffDelay: {delay}{dead_letter}"


def always(status: int, body: bytes = b"", headers: dict[str, str] | None = None):
    return lambda _received: web.Response(status=status, body=body, headers=headers)


async def _start(start_plane, subscriber: Subscriber, namespace: str, spec: str):
    manifests = broker_yaml(namespace) + trigger_yaml(namespace, "t", f"{subscriber.url}/sub", spec)
    plane = await start_plane(manifests, namespace)
    return f"{plane.url}/{namespace}/default"


@pytest.mark.parametrize(
    ("policy", "expected_delays"),
    [("linear", [0.1, 0.2, 0.3]), ("exponential", [0.2, 0.4, 0.8])],
)
async def test_retry_count_and_backoff_timing(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession,
    policy: str, expected_delays: list[float],
) -> None:
    subscriber.answers["sub"] = always(503)
    url = await _start(start_plane, subscriber, namespace, delivery(3, policy, "PT0.1S", f"{subscriber.url}/dls"))
    assert await post_event(http, url, event()) == 202
    await subscriber.wait_for("dls", 1)
    attempts = subscriber.at("sub")
    assert len(attempts) == 4
    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:])]
    for gap, expected in zip(gaps, expected_delays):
        assert expected <= gap < expected + 0.15, (gaps, expected_delays)


@pytest.mark.parametrize("status", [500, 502, 503, 404, 408, 409, 429])
async def test_retried_statuses(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession, status: int
) -> None:
    subscriber.answers["sub"] = lambda r: web.Response(status=status if r.attempt < 3 else 202)
    url = await _start(start_plane, subscriber, namespace, delivery(5, sink=f"{subscriber.url}/dls"))
    assert await post_event(http, url, event()) == 202
    received = await subscriber.wait_for("sub", 3)
    assert [r.attempt for r in received] == [1, 2, 3]
    assert subscriber.at("dls") == []


@pytest.mark.parametrize("status", [400, 401, 403, 413, 422, 302])
async def test_not_retried_statuses_go_to_the_dead_letter_sink_at_once(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession, status: int
) -> None:
    subscriber.answers["sub"] = always(status)
    url = await _start(start_plane, subscriber, namespace, delivery(5, sink=f"{subscriber.url}/dls"))
    assert await post_event(http, url, event()) == 202
    await subscriber.wait_for("dls", 1)
    assert len(subscriber.at("sub")) == 1


async def test_dead_letter_extensions(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    body = b"voltage out of range " * 100  # over 1024 bytes: truncated
    subscriber.answers["sub"] = always(422, body, {"kne-reason": "validation", "content-type": "text/plain"})
    url = await _start(start_plane, subscriber, namespace, delivery(2, sink=f"{subscriber.url}/dls"))
    original = event(id="e-1")
    assert await post_event(http, url, original) == 202
    [letter] = await subscriber.wait_for("dls", 1)
    attributes = letter.event.attributes
    assert attributes["knativeerrordest"] == f"{subscriber.url}/sub"
    assert attributes["knativeerrorcode"] == "422"
    assert base64.b64decode(attributes["knativeerrordata"]) == body[:1024]
    assert attributes["reason"] == "validation"
    assert letter.event.id == "e-1" and letter.event.data == original.data


async def test_connection_errors_are_retried_then_dead_lettered_with_the_reason(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    from local.servers.process import free_port

    nobody = f"http://127.0.0.1:{free_port()}/gone"
    manifests = broker_yaml(namespace) + trigger_yaml(namespace, "t", nobody, delivery(2, sink=f"{subscriber.url}/dls"))
    plane = await start_plane(manifests, namespace)
    assert await post_event(http, f"{plane.url}/{namespace}/default", event()) == 202
    [letter] = await subscriber.wait_for("dls", 1)
    assert letter.event.attributes["knativeerrordest"] == nobody
    assert "knativeerrorcode" not in letter.event.attributes
    assert base64.b64decode(letter.event.attributes["knativeerrordata"])


async def test_timeout_per_attempt_is_retried(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession
) -> None:
    import asyncio

    async def slow_first(received: Received) -> web.Response:
        if received.attempt == 1:
            await asyncio.sleep(1.0)
        return web.Response(status=202)

    subscriber.answers["sub"] = slow_first
    spec = delivery(2, sink=f"{subscriber.url}/dls") + "\n    timeout: PT0.3S"
    url = await _start(start_plane, subscriber, namespace, spec)
    assert await post_event(http, url, event()) == 202
    received = await subscriber.wait_for("sub", 2)
    assert [r.attempt for r in received] == [1, 2]
    assert subscriber.at("dls") == []


async def test_without_a_sink_the_event_is_logged_as_dropped(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession, caplog
) -> None:
    subscriber.answers["sub"] = always(400)
    url = await _start(start_plane, subscriber, namespace, delivery(0))
    assert await post_event(http, url, event(id="lost-1")) == 202
    await subscriber.wait_for("sub", 1)
    for _ in range(50):
        if any("dropped" in r.message and "lost-1" in r.message for r in caplog.records):
            break
        await __import__("asyncio").sleep(0.05)
    assert any("dropped" in r.getMessage() and "lost-1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_replies_are_published_back_and_routed(
    start_plane, subscriber: Subscriber, namespace: str, http: aiohttp.ClientSession, mode: str
) -> None:
    import orjson

    from shared.cloudevents import to_structured

    def answer_with_reply(received: Received) -> web.Response:
        reply = new_event("com.example.reply", "/sub", f"reply-of-{received.event.id}", {"ok": True})
        if mode == "binary":
            headers, body = to_http_binary(reply)
            return web.Response(status=200, body=body, headers=headers)
        return web.Response(
            status=200, body=orjson.dumps(to_structured(reply)), content_type="application/cloudevents+json"
        )

    subscriber.answers["first"] = answer_with_reply
    manifests = (
        broker_yaml(namespace)
        + trigger_yaml(namespace, "first", f"{subscriber.url}/first", "  filter: {attributes: {type: com.example.test}}")
        + trigger_yaml(namespace, "replies", f"{subscriber.url}/replies", "  filter: {attributes: {type: com.example.reply}}")
    )
    plane = await start_plane(manifests, namespace)
    assert await post_event(http, f"{plane.url}/{namespace}/default", event(id="q-1")) == 202
    [reply] = await subscriber.wait_for("replies", 1)
    assert reply.event.id == "reply-of-q-1"
    assert reply.event.json() == {"ok": True}
    assert len(subscriber.at("first")) == 1
