"""The one sample type every GPU source returns and the cost engine reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final, Literal

SourceName = Literal["nvml", "smi", "seed"]

READING_FIELDS: Final = (
    "power_w",
    "energy_j",
    "gpu_util_pct",
    "mem_util_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "temp_c",
    "sm_clock_mhz",
)
"""The measured fields of a sample: those a source may be unable to read."""


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One reading of one GPU. A field the source could not read is None, never a guess."""

    t: float
    """Unix seconds when the reading was taken."""
    gpu_index: int
    source: SourceName
    gpu_uuid: str | None = None
    gpu_name: str | None = None
    power_w: float | None = None
    energy_j: float | None = None
    """The driver's total-energy counter, joules since it was loaded (may reset)."""
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_bytes: int | None = None
    mem_total_bytes: int | None = None
    temp_c: float | None = None
    sm_clock_mhz: float | None = None
    mig_mode: bool | None = None
    phase: str | None = None
    """Workload label, present only in recorded traces."""


# What a reading may be. Outside these it is a driver fault or a unit mistake, and a
# window priced from it would be wrong: it is dropped (None) and counted. Utilisation
# is the exception: a rounding 100.4 % is clamped, since it still says "busy".
READING_RANGES: Final[dict[str, tuple[float, float]]] = {
    "power_w": (0.0, 10_000.0),
    "energy_j": (0.0, 1e15),
    "mem_used_bytes": (0.0, 1e15),
    "mem_total_bytes": (0.0, 1e15),
    "temp_c": (-60.0, 250.0),
    "sm_clock_mhz": (0.0, 100_000.0),
}
PERCENT_FIELDS: Final = ("gpu_util_pct", "mem_util_pct")
PERCENT_SLACK: Final = 5.0
"""How far outside [0, 100] a utilisation may be and still be clamped, not dropped."""


def clean_sample(sample: GpuSample) -> tuple[GpuSample, list[str]]:
    """The sample with impossible readings removed, and the fields removed."""
    changes: dict[str, float | None] = {}
    dropped: list[str] = []
    for name, (low, high) in READING_RANGES.items():
        value = getattr(sample, name)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            changes[name] = None
            dropped.append(name)
    for name in PERCENT_FIELDS:
        value = getattr(sample, name)
        if value is None:
            continue
        if not math.isfinite(value) or not -PERCENT_SLACK <= value <= 100 + PERCENT_SLACK:
            changes[name] = None
            dropped.append(name)
        elif not 0 <= value <= 100:
            changes[name] = min(max(value, 0.0), 100.0)
    return (replace(sample, **changes) if changes else sample), dropped  # type: ignore[arg-type]
