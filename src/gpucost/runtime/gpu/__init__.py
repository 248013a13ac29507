"""GPU sources: NVML, nvidia-smi or a recorded trace, all returning GpuSample.

`open_source("auto")` tries NVML, then nvidia-smi, then the seed trace, and returns the
reason each skipped source gave so the processor can log it and show it on /ready.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from gpucost.errors import ConfigError
from gpucost.runtime.gpu.base import GpuSource, GpuSourceUnavailable
from gpucost.runtime.gpu.nvml import NvmlSource
from gpucost.runtime.gpu.seed import SeedSource
from gpucost.runtime.gpu.smi import SmiSource, parse_smi_csv
from gpucost.runtime.trace import default_seed_path

__all__ = [
    "KINDS",
    "GpuSource",
    "GpuSourceUnavailable",
    "NvmlSource",
    "SeedSource",
    "SmiSource",
    "default_seed_path",
    "open_source",
    "parse_smi_csv",
]

log = logging.getLogger(__name__)

KINDS = ("auto", "nvml", "smi", "seed")
_AUTO_ORDER = ("nvml", "smi", "seed")


def _open_one(kind: str, seed_path: Path | None, clock: Callable[[], float]) -> GpuSource:
    if kind == "nvml":
        return NvmlSource(clock=clock)
    if kind == "smi":
        return SmiSource(clock=clock)
    return SeedSource(seed_path, clock=clock)


def open_source(
    kind: str,
    *,
    seed_path: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[GpuSource, list[str]]:
    """Open the GPU source named by GPU_SOURCE and say why any earlier choice was skipped.

    A named source that cannot open raises GpuSourceUnavailable: asking for NVML and
    silently getting a replay would report made-up costs as real. Only `auto` falls back;
    its notes read like "nvml: nvmlInit failed: NVML Shared Library Not Found".
    """
    wanted = kind.strip().lower()
    if wanted not in KINDS:
        raise ConfigError(
            f"unknown GPU source {kind!r}", hint=f"set GPU_SOURCE to one of {', '.join(KINDS)}"
        )
    if wanted != "auto":
        return _open_one(wanted, seed_path, clock), []

    notes: list[str] = []
    for candidate in _AUTO_ORDER:
        try:
            source = _open_one(candidate, seed_path, clock)
        except GpuSourceUnavailable as err:
            notes.append(f"{candidate}: {err.one_line()}")
            log.info("GPU source %s skipped: %s", candidate, err.one_line())
            continue
        log.info("GPU source %s chosen", candidate)
        return source, notes
    raise GpuSourceUnavailable("no GPU source could be opened: " + "; ".join(notes))
