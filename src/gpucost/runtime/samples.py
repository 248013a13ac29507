"""The one sample type every GPU source returns and the cost engine reads."""

from __future__ import annotations

from dataclasses import dataclass
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
