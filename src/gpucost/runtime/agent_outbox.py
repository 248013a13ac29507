"""The agent's bounded buffer of samples waiting for the broker, oldest dropped first.

A broker outage must not cost the samples taken during it, but memory on an inference
host is not the agent's to take: past `limit` samples the OLDEST waiting one is dropped,
so that when the broker returns the newest readings (the ones a live window still needs)
are there. Every drop is counted and its time kept, so the agent can say exactly what
it dropped: how many, and the time span they covered.

Pure: no clock, no Kafka.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pending:
    """One encoded sample on its way to Kafka."""

    t: float
    gpu_index: int
    value: bytes


@dataclass(frozen=True, slots=True)
class DropSpan:
    """Samples dropped since the last report: how many and the times they covered."""

    count: int
    first_t: float
    last_t: float


class Outbox:
    """FIFO of Pending samples, at most `limit` long."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._items: deque[Pending] = deque()
        self.dropped = 0
        """Dropped for good since the start."""
        self._span_count = 0
        self._span_first = 0.0
        self._span_last = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Pending) -> None:
        """Add the newest sample; drops the oldest if the buffer is full."""
        self._items.append(item)
        self._trim()

    def push_front(self, items: Iterable[Pending]) -> None:
        """Put back samples that were taken out (a delivery that must be tried again),
        ahead of the others, in the order given; they are the oldest, so the first to go
        if that overfills the buffer."""
        self._items.extendleft(reversed(list(items)))
        self._trim()

    def pop(self, most: int) -> list[Pending]:
        """Take up to `most` of the oldest samples out, oldest first."""
        taken: list[Pending] = []
        while self._items and len(taken) < most:
            taken.append(self._items.popleft())
        return taken

    def take_drops(self) -> DropSpan | None:
        """The drops since the last call, or None if there were none."""
        if not self._span_count:
            return None
        span = DropSpan(self._span_count, self._span_first, self._span_last)
        self._span_count = 0
        return span

    def _trim(self) -> None:
        while len(self._items) > self.limit:
            old = self._items.popleft()
            self.dropped += 1
            if not self._span_count:
                self._span_first = old.t
                self._span_last = old.t
            else:
                self._span_first = min(self._span_first, old.t)
                self._span_last = max(self._span_last, old.t)
            self._span_count += 1
