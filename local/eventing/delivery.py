"""Delivery of one event to a subscriber with Knative's retry, backoff, timeout,
reply and dead-letter semantics. Every decision is logged."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from local.eventing.kafka import KafkaUnavailable
from local.eventing.manifests import DeliverySpec
from local.http1 import HttpClient
from shared.auth.client import ServiceToken, TokenRefused, TokenUnavailable
from shared.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    InvalidEvent,
    from_http,
    to_http_binary,
)
from shared.resilience import retryable_status

log = logging.getLogger("smartgrid.eventing.delivery")

ERROR_DATA_LIMIT = 1024
_EXTENSION_NAME = re.compile(r"[^a-z0-9]")

PublishReply = Callable[[str, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    """A resolved delivery route: who receives, with which policy, where failures go."""

    name: str
    subscriber: str
    spec: DeliverySpec
    dead_letter_sink: str | None
    reply_topic: str | None
    timeout_s: float


@dataclass(frozen=True)
class Attempt:
    """The result of one HTTP POST: a status and body, or the connection error."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Knative retries 5xx, 404, 408, 409, 429 and connection errors."""
        return self.status is None or retryable_status(self.status)

    def describe(self) -> str:
        return f"status={self.status}" if self.status is not None else f"error={self.error!r}"


class Deliverer:
    """Posts events in HTTP binary mode and applies the route's delivery spec: `http://` URLs
    through the lean keep-alive client, any other scheme (TLS) through aiohttp."""

    def __init__(self, client: HttpClient, session: aiohttp.ClientSession, publish_reply: PublishReply,
                 token: ServiceToken | None = None) -> None:
        self._client = client
        self._session = session
        self._publish_reply = publish_reply
        self._token = token

    async def deliver(self, event: CloudEvent, route: Route) -> None:
        """Deliver `event`; on final failure send it to the dead-letter sink or log it dropped."""
        attempt, attempts = await self._post_with_retries(event, route.subscriber, route)
        if not attempt.ok:
            await self._dead_letter(event, route, attempt, f"failed after {attempts} attempt(s)")
            return
        log.info("delivered route=%s id=%s status=%s attempts=%d", route.name, event.id, attempt.status, attempts)
        if route.reply_topic is not None:
            await self._forward_reply(event, route, attempt, route.reply_topic)

    async def _forward_reply(self, event: CloudEvent, route: Route, answer: Attempt, topic: str) -> None:
        """Publish the CloudEvent of a 2xx answer, if any, back to the broker."""
        try:
            reply = _reply_event(answer)
            if reply is None:
                return
            await self._publish_reply(topic, reply)
        except (InvalidEvent, KafkaUnavailable) as error:
            failed = Attempt(answer.status, f"reply not forwarded: {error}".encode(), answer.headers)
            await self._dead_letter(event, route, failed, "its reply could not be forwarded")
            return
        log.info("reply route=%s id=%s reply-id=%s type=%s", route.name, event.id, reply.id, reply.type)

    async def _post_with_retries(self, event: CloudEvent, url: str, route: Route) -> tuple[Attempt, int]:
        """POST until an answer is final or the retries are spent; return it and the attempts made."""
        headers, body = to_http_binary(event)
        first = await self._post(url, headers, body, route.timeout_s)
        if first.ok or not first.retryable or route.spec.retry == 0:
            return first, 1  # the common case, without building a retry policy
        log_retry(route, event, 1, first)

        def before_sleep(state: RetryCallState) -> None:
            log_retry(route, event, state.attempt_number + 1, state.outcome.result())

        retrying = AsyncRetrying(
            stop=stop_after_attempt(route.spec.retry),
            wait=lambda state: route.spec.backoff(state.attempt_number + 1),
            retry=retry_if_result(lambda attempt: not attempt.ok and attempt.retryable),
            before_sleep=before_sleep,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        await asyncio.sleep(route.spec.backoff(1))
        attempt = await retrying(self._post, url, headers, body, route.timeout_s)
        return attempt, 1 + retrying.statistics.get("attempt_number", 1)

    async def _post(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Attempt:
        if self._token is not None:  # Knative Eventing's OIDC delivery: the data plane's own access token
            try:
                headers = {**headers, "authorization": f"Bearer {await self._token.get()}"}
            except (TokenUnavailable, TokenRefused) as error:
                return Attempt(None, error=f"no delivery token: {error}")
        answer = await self._post_unauthenticated(url, headers, body, timeout_s)
        if answer.status == 401 and self._token is not None:
            self._token.forget()
        return answer

    async def _post_unauthenticated(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Attempt:
        if not url.startswith("http://"):
            return await self._post_with_aiohttp(url, headers, body, timeout_s)
        try:
            response = await self._client.post(url, headers, body, timeout_s)
        except TimeoutError:
            return Attempt(None, error=f"no answer within {timeout_s:g} s")
        except (OSError, ValueError) as error:  # HttpError is an OSError
            return Attempt(None, error=str(error) or type(error).__name__)
        return Attempt(response.status, response.body, response.header_dict())

    async def _post_with_aiohttp(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Attempt:
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                return Attempt(response.status, await response.read(), response.headers)
        except TimeoutError:
            return Attempt(None, error=f"no answer within {timeout_s:g} s")
        except aiohttp.ClientError as error:
            return Attempt(None, error=str(error) or type(error).__name__)

    async def _dead_letter(self, event: CloudEvent, route: Route, failed: Attempt, why: str) -> None:
        if route.dead_letter_sink is None:
            log.warning("dropped route=%s id=%s type=%s %s %s: no dead-letter sink",
                        route.name, event.id, event.type, why, failed.describe())
            return
        letter = event.with_attributes(**_error_extensions(route.subscriber, failed))
        attempt, attempts = await self._post_with_retries(letter, route.dead_letter_sink, route)
        if attempt.ok:
            log.warning("dead-lettered route=%s id=%s type=%s %s %s sink=%s",
                        route.name, event.id, event.type, why, failed.describe(), route.dead_letter_sink)
        else:
            log.error("dropped route=%s id=%s type=%s %s %s; dead-letter sink failed after %d attempt(s) %s",
                      route.name, event.id, event.type, why, failed.describe(), attempts, attempt.describe())


def log_retry(route: Route, event: CloudEvent, attempt_number: int, failed: Attempt) -> None:
    """Log that failed attempt n will be followed by another after the backoff delay."""
    log.info("retry route=%s id=%s attempt=%d %s delay=%.3fs",
             route.name, event.id, attempt_number, failed.describe(), route.spec.backoff(attempt_number))


def _error_extensions(destination: str, failed: Attempt) -> dict[str, str]:
    """The `knativeerror*` extensions, plus response headers prefixed `kne-`."""
    extensions: dict[str, str] = {"knativeerrordest": destination}
    if failed.status is not None:
        extensions["knativeerrorcode"] = str(failed.status)
    data = failed.body or (failed.error or "").encode()
    if data:
        extensions["knativeerrordata"] = base64.b64encode(data[:ERROR_DATA_LIMIT]).decode()
    for name, value in (failed.headers or {}).items():
        if name.lower().startswith("kne-"):
            extension = _EXTENSION_NAME.sub("", name[4:].lower())
            if extension:
                extensions[extension] = value
    return extensions


def _reply_event(attempt: Attempt) -> CloudEvent | None:
    """The CloudEvent a subscriber answered with, if any."""
    headers = attempt.headers or {}
    content_type = headers.get("content-type", "")
    if "ce-specversion" in headers or content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return from_http(headers, attempt.body)
    return None
