"""A token bucket that paces publishing, pure: the clock is injected, nothing sleeps here.

The caller takes as many tokens as are available, publishes that many events, then
sleeps for `delay()`. At 50 events/s that is one event per wake-up; at 20,000/s it is a
burst of tens of events per wake-up, because one `sleep` per event cannot be that short.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

DEFAULT_BURST_S: Final = 0.1
"""Seconds of tokens the bucket may hold. It absorbs the scheduler oversleeping one wake-up
(tokens earned while asleep are kept, so the long-run rate holds) but is short enough that
a stalled producer does not release a flood afterwards."""

# Refills are floating point; without this slack 0.9999999999 tokens would be "not one" and
# the release could fall one short of rate x t at an exact boundary.
_EPSILON: Final = 1e-9


class TokenBucket:
    """`rate` tokens per second, holding at most `burst` (≥ 1); it starts holding one token,
    so the first event goes out at once and the count released by time t stays within
    [rate·t - 1, rate·t + burst] for a caller that takes greedily."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number, got {rate!r}")
        capacity = max(1.0, rate * DEFAULT_BURST_S) if burst is None else burst
        if not (math.isfinite(capacity) and capacity >= 1):
            raise ValueError(f"burst must be at least 1 token, got {capacity!r}")
        self.rate: Final = float(rate)
        self.burst: Final = float(capacity)
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def take(self, most: int) -> int:
        """Take up to `most` whole tokens, as many as are available now; 0 if none."""
        self._refill()
        granted = min(most, math.floor(self._tokens + _EPSILON))
        if granted <= 0:
            return 0
        self._tokens -= granted
        return granted

    def delay(self) -> float:
        """Seconds until the next whole token; 0 if one is available now."""
        self._refill()
        missing = 1.0 - self._tokens - _EPSILON
        return missing / self.rate if missing > 0 else 0.0

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:  # a clock that steps back earns nothing rather than taking tokens away
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last = now
