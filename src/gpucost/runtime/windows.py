"""Which windows are due to be written, and the GPU samples kept to write them. Pure: the
caller passes the clock in, so the scheduling rules are tested without waiting."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gpucost.runtime.cost import width_ms, window_start_ms
from gpucost.runtime.samples import GpuSample

GpuKey = tuple[str, str]
"""(node, gpu): one GPU. Its name on the node is its index, or its UUID where nothing
said which index that is. Two nodes' GPU 0 are two GPUs."""

WindowKey = tuple[str, str, int]
"""(node, gpu, window start in integer milliseconds)."""


def window_key(gpu: GpuKey, start_ms: int) -> WindowKey:
    return (gpu[0], gpu[1], start_ms)


def start_s(key: WindowKey) -> float:
    """The window's start in seconds, as documents store it."""
    return key[2] / 1000


@dataclass(frozen=True, slots=True)
class SampleReach:
    """How far one GPU's samples reach, when they come from agents through Kafka."""

    newest: float
    """Time of the newest sample; -inf before the first."""
    stopped: bool
    """No sample arrived for a while: the agent is gone, or its GPU."""


NO_SAMPLES_YET: Final = SampleReach(-math.inf, stopped=False)


MAX_BUFFERED_SAMPLES: Final = 200_000
"""Per GPU, whatever is still to write: 2.3 days at one sample a second, ~40 MB."""


@dataclass
class SampleBuffer:
    """One GPU's recent samples, oldest first, trimmed by age."""

    retention_s: float
    samples: deque[GpuSample] = field(default_factory=deque)
    arrived_at: float | None = None
    """When (by the processor's clock) the last sample arrived; set by the caller."""

    def add(self, sample: GpuSample, keep_from: float = math.inf) -> None:
        """Keep `sample`; forget those older than the retention behind it, but none from
        `keep_from` on (the oldest window still to write): a backlog of samples read
        after a long gap is trimmed only as its windows are written."""
        if self.samples and sample.t <= self.samples[-1].t:
            return  # a source that repeats or steps back in time adds nothing new
        self.samples.append(sample)
        horizon = min(sample.t - self.retention_s, keep_from)
        while self.samples and self.samples[0].t < horizon:
            self.samples.popleft()
        while len(self.samples) > MAX_BUFFERED_SAMPLES:
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
    Every key is in integer milliseconds, so an idle window and an event's window are
    the same key for any width.
    """

    window_s: float
    grace_s: float
    dirty: set[WindowKey] = field(default_factory=set)
    next_sampled: dict[GpuKey, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.width_ms = width_ms(self.window_s)

    def mark_events(self, keys: set[WindowKey]) -> None:
        self.dirty |= keys

    def mark_sampled(self, gpu: GpuKey, t: float) -> None:
        self.next_sampled.setdefault(gpu, window_start_ms(t, self.window_s))

    def start_sampled_after(self, gpu: GpuKey, written_ms: int) -> None:
        """Idle windows of `gpu` up to `written_ms` were written already (by this
        processor before a restart, or by the partition's previous owner)."""
        following = written_ms + self.width_ms
        if self.next_sampled.get(gpu, following) < following:
            self.next_sampled[gpu] = following

    def oldest_unwritten_ms(self, gpu: GpuKey) -> int | None:
        """Start of the oldest window of `gpu` still to write, if any."""
        starts = [k[2] for k in self.dirty if k[0] == gpu[0] and k[1] == gpu[1]]
        if gpu in self.next_sampled:
            starts.append(self.next_sampled[gpu])
        return min(starts, default=None)

    def forget(self, gpus: set[GpuKey]) -> None:
        """Stop writing these GPUs' windows: their partition went to another processor."""
        self.dirty = {key for key in self.dirty if (key[0], key[1]) not in gpus}
        for gpu in gpus:
            self.next_sampled.pop(gpu, None)

    def is_closed(self, start_ms: int, now: float) -> bool:
        return (start_ms + self.width_ms) / 1000 + self.grace_s <= now

    def due(
        self,
        now: float,
        *,
        caught_up: bool = True,
        event_time: float | None = None,
        reach: Mapping[GpuKey, SampleReach] | None = None,
        unknown: SampleReach = NO_SAMPLES_YET,
    ) -> list[WindowKey]:
        """Windows to write now, oldest first. Call `claim` before writing each one and
        `done` after; a failed write calls `mark_events` to keep it due.

        A window with events closes when the newest event seen (`event_time`, never
        ahead of `now`) has passed it, or by the clock once the consumer has `caught_up`.
        While a backlog drains, its events are "late" by the clock: closing their windows
        by the clock would rewrite each window, and every share in it, once per batch.

        With `reach` (per GPU, when samples arrive from agents through Kafka and may lag
        the clock; `unknown` for a GPU not sampled yet), a window also waits for its
        samples: a window written before them would be priced without them. A window
        with events waits until its GPU was sampled past its end, or its samples
        stopped. An idle window is charged only on evidence: up to the newest sample,
        and the window holding it once the samples stopped. A GPU whose agent is gone
        is not charged for the time after.
        """
        watermark = min(event_time, now) if event_time is not None else None

        def sampled(gpu: GpuKey, start: int, *, idle: bool) -> bool:
            if reach is None:
                return True
            seen = reach.get(gpu, unknown)
            if seen.newest >= (start + self.width_ms) / 1000:
                return True
            if idle:
                return seen.stopped and start / 1000 <= seen.newest
            return seen.stopped

        keys = {
            key
            for key in self.dirty
            if (
                (watermark is not None and self.is_closed(key[2], watermark))
                or (caught_up and self.is_closed(key[2], now))
            )
            and sampled((key[0], key[1]), key[2], idle=False)
        }
        for gpu, start in self.next_sampled.items():
            while self.is_closed(start, now) and sampled(gpu, start, idle=True):
                keys.add(window_key(gpu, start))
                start += self.width_ms
        return sorted(keys, key=lambda key: (key[2], key[0], key[1]))

    def claim(self, key: WindowKey) -> None:
        """Take a window off the dirty set just before writing it: events landing while
        it is written mark it dirty again, so they are not lost to a late `done`."""
        self.dirty.discard(key)

    def done(self, key: WindowKey) -> None:
        gpu = (key[0], key[1])
        if gpu in self.next_sampled and self.next_sampled[gpu] <= key[2]:
            self.next_sampled[gpu] = key[2] + self.width_ms
