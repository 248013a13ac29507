"""A recorded GPU trace replayed as if live, so the pipeline runs on hosts with no GPU.

Sample i of the trace is served at start + (t_i - t_0) + k * period in loop k, where
start is the clock when the source opened. The energy counter gains one loop's worth of
energy per loop, so it never runs backwards at the seam.
"""

from __future__ import annotations

import bisect
import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from gpucost.errors import InputError
from gpucost.runtime.gpu.base import GpuSourceUnavailable
from gpucost.runtime.samples import READING_FIELDS, GpuSample, SourceName
from gpucost.runtime.trace import default_seed_path, load_trace


def _load_samples(path: Path) -> list[GpuSample]:
    try:
        samples = load_trace(path).samples
    except InputError as err:
        raise GpuSourceUnavailable(f"seed {err.message}", hint=err.hint) from err
    # One GPU is replayed: interleaving several would break the one-timeline loop below.
    first_gpu = min((s.gpu_index for s in samples), default=0)
    return sorted((s for s in samples if s.gpu_index == first_gpu), key=lambda s: s.t)


def _lerp(a: float | None, b: float | None, w: float) -> float | None:
    if a is None:
        return None
    return a if b is None else a + (b - a) * w


class SeedSource:
    """Replays a recorded trace, looped and shifted so its first sample is `now` at open."""

    name: SourceName = "seed"

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path or default_seed_path()
        samples = _load_samples(self._path)
        if not samples:
            raise GpuSourceUnavailable(f"seed trace {self._path} has no samples")
        self._samples = samples
        t0 = samples[0].t
        self._offsets = [s.t - t0 for s in samples]
        steps = [b - a for a, b in zip(self._offsets, self._offsets[1:], strict=False) if b > a]
        # The seam between loops is one typical sample interval long, like any other gap.
        self.step_s = statistics.median(steps) if steps else 1.0
        self.period_s = self._offsets[-1] + self.step_s
        self.energy_per_loop_j = self._energy_per_loop()
        self._clock = clock
        self.started_at = clock()

    def _energy_per_loop(self) -> float:
        counted = [(s.t, s.energy_j, s.power_w) for s in self._samples if s.energy_j is not None]
        if not counted:
            return 0.0
        (t_first, e_first, _), (t_last, e_last, p_last) = counted[0], counted[-1]
        recorded = e_last - e_first
        # Across the seam the GPU keeps drawing the last recorded power; without it the
        # counter would stand still for one interval while power says otherwise.
        seam_s = self.period_s - (t_last - t_first)
        if p_last is not None:
            seam_j = p_last * seam_s
        else:
            span = t_last - t_first
            seam_j = recorded / span * seam_s if span > 0 else 0.0
        return max(0.0, recorded + seam_j)

    def _at(self, i: int, loop: int) -> tuple[GpuSample, float | None]:
        s = self._samples[i]
        energy = None if s.energy_j is None else s.energy_j + loop * self.energy_per_loop_j
        return s, energy

    def read(self) -> list[GpuSample]:
        now = self._clock()
        elapsed = max(0.0, now - self.started_at)
        loop_f, offset = divmod(elapsed, self.period_s)
        loop = int(loop_f)
        i = max(0, bisect.bisect_right(self._offsets, offset) - 1)
        if i + 1 < len(self._samples):
            j, loop_j, t_j = i + 1, loop, self._offsets[i + 1]
        else:
            j, loop_j, t_j = 0, loop + 1, self.period_s
        cur, e_cur = self._at(i, loop)
        nxt, enxt = self._at(j, loop_j)
        span = t_j - self._offsets[i]
        w = min(1.0, max(0.0, (offset - self._offsets[i]) / span)) if span > 0 else 0.0
        # Counters and power move smoothly between samples; gauges hold the latest value.
        return [
            dataclasses.replace(
                cur,
                t=now,
                source=self.name,
                power_w=_lerp(cur.power_w, nxt.power_w, w),
                energy_j=_lerp(e_cur, enxt, w),
            )
        ]

    def describe(self) -> dict[str, object]:
        unsupported = [
            f for f in READING_FIELDS if all(getattr(s, f) is None for s in self._samples)
        ]
        first = self._samples[0]
        return {
            "source": self.name,
            "trace": str(self._path),
            "samples": len(self._samples),
            "period_s": self.period_s,
            "gpu_count": 1,
            "gpus": [
                {
                    "index": first.gpu_index,
                    "name": first.gpu_name,
                    "uuid": first.gpu_uuid,
                    "mig_mode": first.mig_mode,
                    "unsupported": unsupported,
                }
            ],
        }

    def close(self) -> None:
        """Nothing is held."""
