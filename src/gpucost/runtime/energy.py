"""Energy of one GPU between two instants, from its samples.

Two bases, in order of preference:

* the driver's total-energy counter, made monotonic (a backwards step is a reset,
  see `CumulativeEnergy`) and interpolated linearly between readings. Outside the
  sampled span it is held flat, so time nobody measured adds no energy;
* without a usable counter (fewer than two readings), the trapezoid integral of the
  power readings, interpolated linearly between them. For the same reason it covers
  only the sampled span intersected with the interval asked for: we would rather
  report less energy than invent readings before the first or after the last sample.

Both bases are a cumulative function F(t), and energy is F(t1) - F(t0); energies of
adjacent intervals therefore add up to the energy of their union, and F is kept
monotonic so energy is never negative.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Literal

from gpucost.runtime.samples import GpuSample

EnergyBasis = Literal["counter", "power"]


def _reading(value: float | None) -> float | None:
    # A negative or non-finite power or energy value is a broken read, not a reading.
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


class _Cumulative:
    """A non-decreasing piecewise-linear function through (times[i], values[i]), flat
    outside [times[0], times[-1]]. Times are sorted; repeated times are a step."""

    __slots__ = ("times", "values")

    def __init__(self, times: list[float], values: list[float]) -> None:
        self.times = times
        self.values = values

    def at(self, t: float) -> float:
        times, values = self.times, self.values
        if t <= times[0]:
            return values[0]
        if t >= times[-1]:
            return values[-1]
        # times[j] <= t < times[j + 1]; bisect_right skips past repeated times,
        # so the segment always has a positive length.
        j = bisect_right(times, t) - 1
        lo, hi = values[j], values[j + 1]
        frac = (t - times[j]) / (times[j + 1] - times[j])
        # Clamped so rounding can never make F step backwards (energy < 0).
        return min(max(lo + (hi - lo) * frac, lo), hi)


class _PowerIntegral:
    """Trapezoid integral of linearly interpolated power, from the first power reading."""

    __slots__ = ("cumulative", "powers", "times")

    def __init__(self, times: list[float], powers: list[float]) -> None:
        self.times = times
        self.powers = powers
        cumulative = [0.0]
        for i in range(1, len(times)):
            step = (times[i] - times[i - 1]) * (powers[i] + powers[i - 1]) / 2
            cumulative.append(cumulative[-1] + step)
        self.cumulative = cumulative

    def at(self, t: float) -> float:
        times, powers, cumulative = self.times, self.powers, self.cumulative
        if t <= times[0]:
            return 0.0
        if t >= times[-1]:
            return cumulative[-1]
        j = bisect_right(times, t) - 1
        dt = t - times[j]
        p_t = powers[j] + (powers[j + 1] - powers[j]) * dt / (times[j + 1] - times[j])
        value = cumulative[j] + dt * (powers[j] + p_t) / 2
        return min(max(value, cumulative[j]), cumulative[j + 1])

    def between(self, t0: float, t1: float) -> float:
        return max(0.0, self.at(t1) - self.at(t0))


class CumulativeEnergy:
    """Built once from one GPU's samples; each `between` query is O(log n).

    The counter series is rebuilt as a monotonic cumulative sum: a forward step adds
    its delta; a backwards step (driver reload, counter reset) adds the power
    integral over that segment, or nothing if power was not read there.
    """

    __slots__ = ("_counter", "_power", "basis")

    def __init__(self, samples: Sequence[GpuSample]) -> None:
        # Sorting costs nothing on input that is already sorted (timsort) and makes a
        # caller's out-of-order sample harmless.
        ordered = sorted(samples, key=lambda s: s.t)
        power_t: list[float] = []
        power_w: list[float] = []
        counter_t: list[float] = []
        counter_j: list[float] = []
        for s in ordered:
            if not math.isfinite(s.t):
                continue
            p = _reading(s.power_w)
            if p is not None:
                power_t.append(s.t)
                power_w.append(p)
            e = _reading(s.energy_j)
            if e is not None:
                counter_t.append(s.t)
                counter_j.append(e)

        self._power = _PowerIntegral(power_t, power_w) if len(power_t) >= 2 else None
        self._counter: _Cumulative | None = None
        self.basis: EnergyBasis | None = None
        if len(counter_t) >= 2:
            self._counter = _Cumulative(counter_t, self._monotonic(counter_t, counter_j))
            self.basis = "counter"
        elif self._power is not None:
            self.basis = "power"

    def _monotonic(self, times: list[float], readings: list[float]) -> list[float]:
        total = [0.0]
        for i in range(1, len(readings)):
            step = readings[i] - readings[i - 1]
            if step < 0:
                step = self._power.between(times[i - 1], times[i]) if self._power else 0.0
            total.append(total[-1] + step)
        return total

    def between(self, t0: float, t1: float) -> float | None:
        """Joules used in [t0, t1], or None when the samples hold no energy or power."""
        if t1 < t0:
            raise ValueError(f"interval ends before it starts: [{t0}, {t1}]")
        if self._counter is not None:
            return max(0.0, self._counter.at(t1) - self._counter.at(t0))
        if self._power is not None:
            return self._power.between(t0, t1)
        return None


def energy_between(samples: Sequence[GpuSample], t0: float, t1: float) -> float | None:
    """Joules one GPU used in [t0, t1]; samples are that GPU's, sorted by t.

    Builds a `CumulativeEnergy` each call: to query many intervals, build one yourself.
    """
    return CumulativeEnergy(samples).between(t0, t1)
