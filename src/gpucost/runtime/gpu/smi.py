"""GPU samples from the nvidia-smi binary, for hosts where NVML cannot be loaded in-process.

The parser is a pure function over nvidia-smi's CSV (with units), tested on a real
recording; the source only runs the binary and hands its output to the parser.
"""

from __future__ import annotations

import csv
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any

from gpucost.runtime.gpu.base import GpuSourceUnavailable
from gpucost.runtime.samples import READING_FIELDS, GpuSample, SourceName

log = logging.getLogger(__name__)

QUERY_FIELDS = (
    "timestamp",
    "index",
    "uuid",
    "name",
    "pstate",
    "power.draw",
    "power.limit",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "clocks.sm",
    "clocks.mem",
)

# nvidia-smi prints some queried names under their long form in the header.
_HEADER_ALIASES = {"clocks.current.sm": "clocks.sm", "clocks.current.memory": "clocks.mem"}

_BYTES_PER_UNIT = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_PLAIN_UNITS = {"W", "%", "MHz", "C"}

# nvidia-smi puts any value it could not read in brackets ([N/A], [Not Supported],
# [Unknown Error], [Insufficient Permissions], ...); older drivers print a bare N/A.
_MISSING_BARE = {"N/A", ""}

# First query on a host without persistence mode initialises the driver and can take
# seconds; later queries answer in well under one.
OPEN_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 3.0


def smi_argv(binary: str = "nvidia-smi") -> list[str]:
    """The command the source runs: one CSV row per GPU, units kept in the values."""
    return [binary, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv"]


def _is_missing(value: str) -> bool:
    return value in _MISSING_BARE or (value.startswith("[") and value.endswith("]"))


def _split_unit(value: str, header_unit: str | None) -> tuple[str, str | None]:
    number, _, unit = value.partition(" ")
    return number, (unit.strip() or header_unit)


def _as_float(value: str, header_unit: str | None) -> float | None:
    if _is_missing(value):
        return None
    number, unit = _split_unit(value, header_unit)
    if unit is not None and unit not in _PLAIN_UNITS:
        raise ValueError(f"unexpected unit {unit!r} in {value!r}")
    return float(number)


def _as_bytes(value: str, header_unit: str | None) -> int | None:
    if _is_missing(value):
        return None
    number, unit = _split_unit(value, header_unit)
    if unit not in _BYTES_PER_UNIT:
        raise ValueError(f"unexpected memory unit {unit!r} in {value!r}")
    return round(float(number) * _BYTES_PER_UNIT[unit])


def _as_text(value: str) -> str | None:
    return None if _is_missing(value) else value


def _as_time(value: str, tz: tzinfo | None) -> float:
    for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        # nvidia-smi prints local time without a zone; None keeps it local.
        return parsed.replace(tzinfo=tz).timestamp() if tz else parsed.timestamp()
    raise ValueError(f"unexpected timestamp {value!r}")


def _parse_header(row: list[str]) -> list[tuple[str, str | None]]:
    columns: list[tuple[str, str | None]] = []
    for cell in row:
        name, _, rest = cell.strip().partition(" [")
        unit = rest.rstrip("]") if rest else None
        columns.append((_HEADER_ALIASES.get(name, name), unit))
    return columns


def parse_smi_csv(text: str, *, tz: tzinfo | None = None) -> list[GpuSample]:
    """Parse `nvidia-smi --query-gpu=... --format=csv` output into samples, one per row.

    Columns are found by their header, so order does not matter and columns the sample
    has no field for (pstate, limits, memory clock) are ignored. Memory is converted to
    bytes. Any bracketed value ([N/A], [Not Supported]) becomes None. Timestamps are read
    as local time unless `tz` is given. A malformed row raises ValueError: a parser that
    guesses would hide a changed nvidia-smi.
    """
    rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if row]
    if not rows:
        return []
    header = _parse_header(rows[0])
    names = [name for name, _ in header]
    for required in ("timestamp", "index"):
        if required not in names:
            raise ValueError(f"nvidia-smi output has no {required!r} column: {rows[0]}")

    samples: list[GpuSample] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"line {line_no}: {len(row)} values for {len(header)} columns")
        cells = {
            name: (value.strip(), unit) for (name, unit), value in zip(header, row, strict=True)
        }
        try:
            samples.append(_sample_from_cells(cells, tz))
        except ValueError as err:
            raise ValueError(f"line {line_no}: {err}") from err
    return samples


def _sample_from_cells(cells: dict[str, tuple[str, str | None]], tz: tzinfo | None) -> GpuSample:
    def get(name: str) -> tuple[str, str | None]:
        return cells.get(name, ("[N/A]", None))

    def number(name: str) -> float | None:
        return _as_float(*get(name))

    def memory(name: str) -> int | None:
        return _as_bytes(*get(name))

    return GpuSample(
        t=_as_time(cells["timestamp"][0], tz),
        gpu_index=int(cells["index"][0]),
        source="smi",
        gpu_uuid=_as_text(get("uuid")[0]),
        gpu_name=_as_text(get("name")[0]),
        power_w=number("power.draw"),
        gpu_util_pct=number("utilization.gpu"),
        mem_util_pct=number("utilization.memory"),
        mem_used_bytes=memory("memory.used"),
        mem_total_bytes=memory("memory.total"),
        temp_c=number("temperature.gpu"),
        sm_clock_mhz=number("clocks.sm"),
    )


class SmiSource:
    """Runs nvidia-smi once per read. No energy counter: the cost engine integrates power."""

    name: SourceName = "smi"

    def __init__(
        self,
        binary: str = "nvidia-smi",
        *,
        clock: Callable[[], float] = time.time,
        read_timeout_s: float = READ_TIMEOUT_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
    ) -> None:
        resolved = shutil.which(binary)
        if resolved is None:
            raise GpuSourceUnavailable(
                f"{binary} not found on PATH", hint="install the NVIDIA driver utilities"
            )
        self._argv = smi_argv(resolved)
        self._clock = clock
        self._read_timeout_s = read_timeout_s
        first = self._query(open_timeout_s)
        if not first:
            raise GpuSourceUnavailable("nvidia-smi listed no GPUs")
        self._gpus: list[dict[str, Any]] = [
            {
                "index": s.gpu_index,
                "name": s.gpu_name,
                "uuid": s.gpu_uuid,
                # The recorded query has no MIG column; say "unknown" rather than guess.
                "mig_mode": None,
                "unsupported": sorted(_none_fields(s)),
            }
            for s in first
        ]

    def _query(self, timeout_s: float) -> list[GpuSample]:
        before = self._clock()
        try:
            done = subprocess.run(
                self._argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise GpuSourceUnavailable(f"nvidia-smi did not answer in {timeout_s:g} s") from err
        except OSError as err:
            raise GpuSourceUnavailable(f"nvidia-smi could not be run: {err}") from err
        after = self._clock()
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            reason = said[0] if said else "no output"
            raise GpuSourceUnavailable(f"nvidia-smi exited {done.returncode}: {reason}")
        try:
            samples = parse_smi_csv(done.stdout)
        except ValueError as err:
            raise GpuSourceUnavailable(f"nvidia-smi output not understood: {err}") from err
        # Stamp with our clock, not nvidia-smi's zoneless local-time text, so samples
        # share the clock of the events they are matched with.
        t = (before + after) / 2
        return [replace(s, t=t) for s in samples]

    def read(self) -> list[GpuSample]:
        return self._query(self._read_timeout_s)

    def describe(self) -> dict[str, object]:
        return {"source": self.name, "gpu_count": len(self._gpus), "gpus": self._gpus}

    def close(self) -> None:
        """Nothing is held between reads."""


def _none_fields(sample: GpuSample) -> set[str]:
    return {f for f in READING_FIELDS if getattr(sample, f) is None}
