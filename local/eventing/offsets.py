"""Which offsets are safe to commit when records complete out of order."""

from __future__ import annotations

from collections import deque

TopicPartitionKey = tuple[str, int]


class _PartitionOffsets:
    """Offsets of one partition in dispatch order, and which of them completed."""

    def __init__(self) -> None:
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.next_offset: int | None = None

    def commit_position(self) -> int | None:
        """The offset to commit: the oldest incomplete one, or one past the last dispatched."""
        while self.pending and self.pending[0] in self.done:
            self.done.discard(self.pending.popleft())
        return self.pending[0] if self.pending else self.next_offset


class OffsetTracker:
    """Tracks dispatched and completed offsets per partition; commits never pass an incomplete one."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartitionKey, _PartitionOffsets] = {}
        self._committed: dict[TopicPartitionKey, int] = {}

    def dispatched(self, topic: str, partition: int, offset: int) -> None:
        """Record that `offset` was handed out for processing."""
        offsets = self._partitions.setdefault((topic, partition), _PartitionOffsets())
        offsets.pending.append(offset)
        offsets.next_offset = offset + 1

    def completed(self, topic: str, partition: int, offset: int) -> None:
        """Record that `offset` was delivered or dead-lettered."""
        self._partitions[(topic, partition)].done.add(offset)

    def commits_due(self) -> dict[TopicPartitionKey, int]:
        """Positions that moved since the last `committed` call, ready to commit."""
        due: dict[TopicPartitionKey, int] = {}
        for key, offsets in self._partitions.items():
            position = offsets.commit_position()
            if position is not None and position != self._committed.get(key):
                due[key] = position
        return due

    def committed(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Record that Kafka stored these positions."""
        self._committed.update(positions)

    @property
    def in_flight(self) -> int:
        """How many dispatched offsets have not completed."""
        return sum(len(o.pending) - len(o.done) for o in self._partitions.values())
