"""OffsetTracker of local/eventing/offsets.py: commits never pass an incomplete offset."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import permutations

import pytest

from local.eventing.offsets import OffsetTracker

TOPIC = "knative-broker-grid-default"
KEY = (TOPIC, 0)


def tracker_with(dispatched: Iterable[int], completed: Iterable[int] = ()) -> OffsetTracker:
    """A tracker of one partition after these dispatches, then these completions."""
    tracker = OffsetTracker()
    for offset in dispatched:
        tracker.dispatched(TOPIC, 0, offset)
    for offset in completed:
        tracker.completed(TOPIC, 0, offset)
    return tracker


def commit_due(tracker: OffsetTracker) -> dict[tuple[str, int], int]:
    """Take the due commits, record them as committed, and return them."""
    due = tracker.commits_due()
    tracker.committed(due)
    return due


@pytest.mark.parametrize(
    ("dispatched", "completed", "position"),
    [
        pytest.param(range(5), [], 0, id="none-completed"),
        pytest.param(range(5), [0], 1, id="first"),
        pytest.param(range(5), [0, 1, 2], 3, id="in-order-prefix"),
        pytest.param(range(5), [0, 1, 2, 3, 4], 5, id="in-order-all"),
        pytest.param(range(5), [1, 2, 3, 4], 0, id="all-but-first"),
        pytest.param(range(5), [0, 2, 3], 1, id="gap"),
        pytest.param(range(5), [4, 3, 2, 1, 0], 5, id="reverse-all"),
        pytest.param(range(5), [3, 0, 1], 2, id="out-of-order"),
        pytest.param([10, 12, 15], [10], 12, id="sparse-offsets"),
        pytest.param([10, 12, 15], [15, 12], 10, id="sparse-first-pending"),
        pytest.param([10, 12, 15], [12, 15, 10], 16, id="sparse-all"),
    ],
)
def test_commit_position(dispatched: Sequence[int], completed: Sequence[int], position: int) -> None:
    assert tracker_with(dispatched, completed).commits_due() == {KEY: position}


def test_never_commits_past_an_incomplete_offset_in_any_completion_order() -> None:
    for order in permutations(range(5)):
        tracker = tracker_with(range(5))
        done: set[int] = set()
        committed: int | None = None
        for offset in order:
            tracker.completed(TOPIC, 0, offset)
            done.add(offset)
            committed = commit_due(tracker).get(KEY, committed)
            lowest_incomplete = min((o for o in range(5) if o not in done), default=5)
            assert committed == lowest_incomplete, f"completion order {order}, after {offset}"


def test_commits_due_only_returns_positions_that_moved() -> None:
    tracker = tracker_with(range(3))
    assert commit_due(tracker) == {KEY: 0}
    assert tracker.commits_due() == {}
    tracker.completed(TOPIC, 0, 1)
    assert tracker.commits_due() == {}, "offset 0 still blocks the position"
    tracker.completed(TOPIC, 0, 0)
    assert commit_due(tracker) == {KEY: 2}
    assert tracker.commits_due() == {}
    tracker.completed(TOPIC, 0, 2)
    assert commit_due(tracker) == {KEY: 3}
    assert tracker.commits_due() == {}


def test_uncommitted_position_stays_due() -> None:
    tracker = tracker_with(range(2), [0])
    assert tracker.commits_due() == {KEY: 1}
    assert tracker.commits_due() == {KEY: 1}, "a failed commit (no `committed` call) is retried"


def test_nothing_dispatched_nothing_due() -> None:
    tracker = OffsetTracker()
    assert tracker.commits_due() == {}
    assert tracker.in_flight == 0


def test_several_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    for topic, partition, offsets in [(TOPIC, 0, range(3)), (TOPIC, 1, range(100, 103)), ("other", 0, range(2))]:
        for offset in offsets:
            tracker.dispatched(topic, partition, offset)
    tracker.completed(TOPIC, 0, 0)
    tracker.completed(TOPIC, 1, 101)
    tracker.completed("other", 0, 0)
    tracker.completed("other", 0, 1)
    assert commit_due(tracker) == {(TOPIC, 0): 1, (TOPIC, 1): 100, ("other", 0): 2}
    tracker.completed(TOPIC, 1, 100)
    assert tracker.commits_due() == {(TOPIC, 1): 102}
    assert tracker.in_flight == 3


@pytest.mark.parametrize(
    ("dispatched", "completed", "in_flight"),
    [
        pytest.param([], [], 0, id="empty"),
        pytest.param(range(4), [], 4, id="none-completed"),
        pytest.param(range(4), [0, 1], 2, id="prefix"),
        pytest.param(range(4), [2, 3], 2, id="suffix"),
        pytest.param(range(4), [3, 1, 0, 2], 0, id="all"),
    ],
)
def test_in_flight(dispatched: Sequence[int], completed: Sequence[int], in_flight: int) -> None:
    tracker = tracker_with(dispatched, completed)
    assert tracker.in_flight == in_flight
    commit_due(tracker)
    assert tracker.in_flight == in_flight, "computing the commit position does not change the count"
