"""The dead-letter store: a redelivered dead letter is kept once, different ones with the same
event id are both kept, one that fails again after its replay is pending again."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.cloudevents import new_event
from shared.deadletters import DeadLetterStore, original_event
from shared.stores.postgres import Database

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(domain_dsns: dict[str, str]) -> AsyncIterator[DeadLetterStore]:
    database = Database(domain_dsns["smartgrid"], max_size=1)
    yield DeadLetterStore(database)
    await database.close()


def letter(event_id: str, data: dict, reason: str = "bad"):
    return new_event("dev.knative.kafka.event", "/apis/v1/namespaces/smartgrid/kafkasources/gateways#t",
                     event_id, data, knativeerrordest="http://process", knativeerrorcode="400",
                     knativeerrordata=base64.b64encode(reason.encode()).decode())


async def test_redelivery_is_kept_once_and_reused_ids_are_kept_apart(store: DeadLetterStore) -> None:
    event_id = f"partition:0/offset:{uuid.uuid4().int % 10_000}"
    first = await store.save(letter(event_id, {"n": 1}))
    assert first is not None
    assert await store.save(letter(event_id, {"n": 1})) is None  # the broker delivered it twice
    second = await store.save(letter(event_id, {"n": 2}))  # same id, another record
    assert second not in (None, first)
    pending = {d.id: d for d in await store.pending([first, second])}
    assert set(pending) == {first, second}
    assert pending[first].error_text == "bad" and pending[first].error_code == 400
    assert "knativeerrorcode" not in original_event(pending[first].event).attributes


async def test_a_replayed_letter_that_fails_again_is_pending_again(store: DeadLetterStore) -> None:
    failed = letter(f"e-{uuid.uuid4().hex}", {"n": 3})
    letter_id = await store.save(failed)
    await store.mark_replayed(letter_id)
    assert await store.pending([letter_id]) == []
    assert await store.save(failed) == letter_id
    assert [d.id for d in await store.pending([letter_id])] == [letter_id]
