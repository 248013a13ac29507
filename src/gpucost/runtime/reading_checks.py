"""Which GPU readings are believed: the rule the agent applies before it publishes a sample.

Per reading (one field of one sample):

- NaN or infinite: dropped (set to None) and counted.
- Utilisation (`gpu_util_pct`, `mem_util_pct`): a finite value outside [0, 100] is
  clamped into it and counted as clamped; NVML reports whole percents, and a value a
  little past either end is rounding, not a broken sensor.
- Any other reading outside its range in `RANGES` is dropped and counted: a negative
  power or energy, or a power no GPU board draws, is a broken reading, and replacing it
  with a guess would put made-up watts into a cost.

Per sample: a time that is not finite or outside the token events' window [2000, 2100),
or a GPU index outside [0, 1e6], makes the whole sample unusable; it is refused and
counted. The other readings of a sample with one dropped reading are kept.

Pure: no clock, no I/O; the agent counts what `check_sample` says.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Final

from gpucost.runtime.events import MAX_TS, MIN_TS
from gpucost.runtime.samples import GpuSample

MAX_POWER_W: Final = 5_000.0
"""Above any single GPU board's draw (an H200 is 700 W, a GB200 superchip about 2.7 kW)."""

RANGES: Final[dict[str, tuple[float, float]]] = {
    "power_w": (0.0, MAX_POWER_W),
    # The driver's counter since it loaded; the wire format refuses more than 1e15.
    "energy_j": (0.0, 1e15),
    "mem_used_bytes": (0, 2**63 - 1),
    "mem_total_bytes": (0, 2**63 - 1),
    "temp_c": (-50.0, 200.0),
    "sm_clock_mhz": (0.0, 10_000.0),
}
"""Inclusive bounds of the readings that are dropped when outside them."""

CLAMPED: Final[dict[str, tuple[float, float]]] = {
    "gpu_util_pct": (0.0, 100.0),
    "mem_util_pct": (0.0, 100.0),
}
"""Inclusive bounds of the readings that are clamped into them."""

MAX_GPU_INDEX: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Checked:
    """What the rule made of one sample."""

    sample: GpuSample | None
    """The sample to publish, bad readings removed; None when it was refused."""
    dropped: tuple[str, ...] = ()
    """Fields whose reading was dropped."""
    clamped: tuple[str, ...] = ()
    """Fields whose reading was clamped."""
    refused: str | None = None
    """Why the whole sample was refused, if it was."""


def _finite(value: float | int) -> bool:
    return isinstance(value, int) or math.isfinite(value)


def check_sample(sample: GpuSample) -> Checked:
    """Apply the module's rule to one sample."""
    if not (math.isfinite(sample.t) and MIN_TS <= sample.t < MAX_TS):
        return Checked(None, refused="bad_time")
    if not 0 <= sample.gpu_index <= MAX_GPU_INDEX:
        return Checked(None, refused="bad_gpu_index")
    changes: dict[str, float | int | None] = {}
    dropped: list[str] = []
    clamped: list[str] = []
    for name, (low, high) in RANGES.items():
        value = getattr(sample, name)
        if value is not None and not (_finite(value) and low <= value <= high):
            changes[name] = None
            dropped.append(name)
    for name, (low, high) in CLAMPED.items():
        value = getattr(sample, name)
        if value is None:
            continue
        if not _finite(value):
            changes[name] = None
            dropped.append(name)
        elif not low <= value <= high:
            changes[name] = min(high, max(low, value))
            clamped.append(name)
    if not changes:
        return Checked(sample)
    return Checked(dataclasses.replace(sample, **changes), tuple(dropped), tuple(clamped))  # type: ignore[arg-type]
