"""Replay the events of a recorded trace, shifted to now: the producer's `--replay` source.

Event i is due at start + (ts_end_i - first ts_end) and is published with `ts` rewritten
to that instant, so the processor sees the recorded rhythm happening today. Each published
event gets a fresh event_id: a replay is new traffic, and the processor deduplicates on
event_id, so reusing the recorded ids would make a second replay of the same trace vanish.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpucost.errors import InputError
from gpucost.runtime.events import TokenEvent
from gpucost.runtime.trace import RecordedEvent, load_trace


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A recorded event and when, relative to the start of one pass, it is due."""

    offset_s: float
    event: RecordedEvent


def schedule(events: Sequence[RecordedEvent]) -> tuple[list[Scheduled], float]:
    """Events in ts_end order with offsets from the first, and the period of one pass.

    Looping starts the next pass one mean gap after the last event, not on top of it,
    so a looped replay keeps the recorded pace across the seam."""
    if not events:
        raise InputError("the trace has no events to replay", "record one with events[]")
    ordered = sorted(events, key=lambda e: e.ts_end)
    first = ordered[0].ts_end
    span = ordered[-1].ts_end - first
    gap = span / (len(ordered) - 1) if len(ordered) > 1 else 1.0
    period = span + (gap if gap > 0 else 1.0)
    return [Scheduled(e.ts_end - first, e) for e in ordered], period


class ReplaySource:
    """Releases recorded events as their shifted time comes; ends after one pass unless `loop`."""

    def __init__(
        self,
        events: Sequence[RecordedEvent],
        *,
        node: str,
        producer: str | None = None,
        loop: bool = False,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        start: float | None = None,
    ) -> None:
        # One wall clock for schedule and `ts`: the published ts must be unix time, and
        # using the same clock to schedule keeps ts exactly on the recorded offsets.
        self._schedule, self._period = schedule(events)
        self._node = node
        self._producer = producer
        self._loop = loop
        self._rng = random.Random(seed)
        self._clock = clock
        self._start = clock() if start is None else start
        self._next = 0
        """Index of the next event across passes: pass = next // len, position = next % len."""

    def _due_at(self, index: int) -> float:
        passes, position = divmod(index, len(self._schedule))
        return self._start + passes * self._period + self._schedule[position].offset_s

    def _exhausted(self) -> bool:
        return not self._loop and self._next >= len(self._schedule)

    def due(self, most: int) -> list[TokenEvent]:
        now = self._clock()
        out: list[TokenEvent] = []
        while len(out) < most and not self._exhausted():
            at = self._due_at(self._next)
            if at > now:
                break
            recorded = self._schedule[self._next % len(self._schedule)].event
            out.append(self._publishable(recorded, at))
            self._next += 1
        return out

    def wait(self) -> float | None:
        """Seconds until the next event is due; None once a single pass is done."""
        if self._exhausted():
            return None
        return max(0.0, self._due_at(self._next) - self._clock())

    def _publishable(self, recorded: RecordedEvent, at: float) -> TokenEvent:
        latency_ms = None
        if recorded.ts_start is not None and recorded.ts_end >= recorded.ts_start:
            latency_ms = round((recorded.ts_end - recorded.ts_start) * 1000.0, 1)
        return TokenEvent(
            v=1,
            event_id=uuid.UUID(int=self._rng.getrandbits(128), version=4),
            ts=at,
            model=recorded.model,
            gpu=recorded.gpu_index,
            node=self._node,
            prompt_tokens=recorded.prompt_tokens,
            completion_tokens=recorded.completion_tokens,
            latency_ms=latency_ms,
            producer=self._producer,
        )


def replay_source(
    path: str,
    *,
    node: str,
    producer: str | None = None,
    loop: bool = False,
    seed: int | None = None,
) -> ReplaySource:
    """Load `path` (any problem is one InputError line) and replay its events from now."""
    trace = load_trace(path)
    return ReplaySource(trace.events, node=node, producer=producer, loop=loop, seed=seed)
