"""Which windows are due to be written, and the GPU samples kept to write them. Pure: the
caller passes the clock in, so the scheduling rules are tested without waiting."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from gpucost.runtime.cost import window_start
from gpucost.runtime.samples import GpuSample

WindowKey = tuple[str, float]
"""(gpu, window_start)."""


@dataclass
class SampleBuffer:
    """One GPU's recent samples, oldest first, trimmed by age."""

    retention_s: float
    samples: deque[GpuSample] = field(default_factory=deque)

    def add(self, sample: GpuSample) -> None:
        if self.samples and sample.t <= self.samples[-1].t:
            return  # a source that repeats or steps back in time adds nothing new
        self.samples.append(sample)
        horizon = sample.t - self.retention_s
        while self.samples and self.samples[0].t < horizon:
            self.samples.popleft()

    def around(self, start: float, end: float) -> list[GpuSample]:
        """The samples inside [start, end] plus one on each side, for interpolation."""
        times = [s.t for s in self.samples]
        lo = max(bisect.bisect_left(times, start) - 1, 0)
        hi = min(bisect.bisect_right(times, end) + 1, len(times))
        return list(self.samples)[lo:hi]

    def covers(self, start: float, end: float) -> bool:
        """True when samples reach into the window: its GPU figures can be computed."""
        return bool(self.samples) and self.samples[0].t < end and self.samples[-1].t >= start


@dataclass
class WindowSchedule:
    """Tracks windows that need writing.

    A window is first written `grace_s` after it ends, once its samples are in. Windows
    with events are marked dirty whenever events land in them, even long after they were
    written (late events): a dirty window is rewritten at the next tick. Windows a GPU
    was sampled in are written once each even without events: the GPU is paid for idle.
    """

    window_s: float
    grace_s: float
    dirty: set[WindowKey] = field(default_factory=set)
    next_sampled: dict[str, float] = field(default_factory=dict)

    def mark_events(self, keys: set[WindowKey]) -> None:
        self.dirty |= keys

    def mark_sampled(self, gpu: str, t: float) -> None:
        self.next_sampled.setdefault(gpu, window_start(t, self.window_s))

    def is_closed(self, start: float, now: float) -> bool:
        return start + self.window_s + self.grace_s <= now

    def due(
        self, now: float, *, caught_up: bool = True, event_time: float | None = None
    ) -> list[WindowKey]:
        """Windows to write now, oldest first. Call `claim` before writing each one and
        `done` after; a failed write calls `mark_events` to keep it due.

        A window with events closes when the newest event seen (`event_time`, never
        ahead of `now`) has passed it, or by the clock once the consumer has `caught_up`.
        While a backlog drains, its events are "late" by the clock: closing their windows
        by the clock would rewrite each window, and every share in it, once per batch.
        """
        watermark = min(event_time, now) if event_time is not None else None
        keys = {
            key
            for key in self.dirty
            if (watermark is not None and self.is_closed(key[1], watermark))
            or (caught_up and self.is_closed(key[1], now))
        }
        for gpu, start in self.next_sampled.items():
            while self.is_closed(start, now):
                keys.add((gpu, start))
                start += self.window_s
        return sorted(keys, key=lambda key: (key[1], key[0]))

    def claim(self, key: WindowKey) -> None:
        """Take a window off the dirty set just before writing it: events landing while
        it is written mark it dirty again, so they are not lost to a late `done`."""
        self.dirty.discard(key)

    def done(self, key: WindowKey) -> None:
        gpu, start = key
        following = start + self.window_s
        if gpu in self.next_sampled and self.next_sampled[gpu] <= start:
            self.next_sampled[gpu] = following
