"""Load a recorded GPU trace (fixtures/gpu/*/trace.json) into typed objects.

The file's shape is checked by msgspec, which names the offending path
(`$.samples[3].t`) so a bad file costs the user one line, not a traceback.
Units change here, once: mW -> W and mJ -> J, to match `GpuSample`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec

from gpucost.errors import InputError
from gpucost.runtime.samples import GpuSample

SEED_TRACE = "h200-llama1b-decode.json"


class _RawGpu(msgspec.Struct):
    name: str | None = None
    uuid: str | None = None
    mig_mode: list[int] | None = None
    """[current, pending], as NVML returns it."""


class _RawMeta(msgspec.Struct):
    gpu: _RawGpu = msgspec.field(default_factory=_RawGpu)


class _RawSample(msgspec.Struct):
    # A reading that raised is absent (with a `<key>_error` key beside it, ignored
    # here as unknown fields are), hence every reading defaults to None.
    t: float
    gpu_index: int = 0
    phase: str | None = None
    power_mw: float | None = None
    energy_mj: float | None = None
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_bytes: int | None = None
    mem_total_bytes: int | None = None
    temp_c: float | None = None
    sm_clock_mhz: float | None = None


class _RawEvent(msgspec.Struct):
    event_id: str
    ts_end: float
    gpu_index: int
    prompt_tokens: int
    completion_tokens: int
    model: str
    ts_start: float | None = None
    batch_size: int | None = None


class _RawTrace(msgspec.Struct):
    meta: _RawMeta
    samples: list[_RawSample]
    events: list[_RawEvent] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TraceMeta:
    gpu_name: str | None
    gpu_uuid: str | None
    model: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    """The whole `meta` object as recorded, for what is not typed above."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One `generate()` call: its tokens, on which GPU, when it ended."""

    event_id: str
    ts_end: float
    gpu_index: int
    prompt_tokens: int
    completion_tokens: int
    model: str
    ts_start: float | None = None
    batch_size: int | None = None

    @property
    def ts(self) -> float:
        """The instant that places the event in a window: when its tokens were done."""
        return self.ts_end

    @property
    def gpu(self) -> str:
        return str(self.gpu_index)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Trace:
    meta: TraceMeta
    samples: list[GpuSample]
    """Sorted by t."""
    events: list[RecordedEvent]


def _milli(value: float | None) -> float | None:
    return None if value is None else value / 1000


def _sample(raw: _RawSample, gpu: _RawGpu) -> GpuSample:
    return GpuSample(
        t=raw.t,
        gpu_index=raw.gpu_index,
        source="seed",
        gpu_uuid=gpu.uuid,
        gpu_name=gpu.name,
        power_w=_milli(raw.power_mw),
        energy_j=_milli(raw.energy_mj),
        gpu_util_pct=raw.gpu_util_pct,
        mem_util_pct=raw.mem_util_pct,
        mem_used_bytes=raw.mem_used_bytes,
        mem_total_bytes=raw.mem_total_bytes,
        temp_c=raw.temp_c,
        sm_clock_mhz=raw.sm_clock_mhz,
        mig_mode=bool(gpu.mig_mode[0]) if gpu.mig_mode else None,
        phase=raw.phase,
    )


def _event(raw: _RawEvent) -> RecordedEvent:
    return RecordedEvent(
        event_id=raw.event_id,
        ts_end=raw.ts_end,
        gpu_index=raw.gpu_index,
        prompt_tokens=raw.prompt_tokens,
        completion_tokens=raw.completion_tokens,
        model=raw.model,
        ts_start=raw.ts_start,
        batch_size=raw.batch_size,
    )


def parse_trace(data: bytes, name: str = "trace") -> Trace:
    """Parse a trace held in memory; `name` only labels error messages."""
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise InputError(f"{name} is not JSON: {error}") from None
    try:
        raw = msgspec.convert(document, type=_RawTrace)
    except msgspec.ValidationError as error:
        raise InputError(
            f"{name} is not a GPU trace: {error}", "expected meta, samples and events"
        ) from None
    meta: dict[str, Any] = document["meta"]
    model = meta.get("model")
    return Trace(
        meta=TraceMeta(
            gpu_name=raw.meta.gpu.name,
            gpu_uuid=raw.meta.gpu.uuid,
            model=model.get("name") if isinstance(model, dict) else None,
            raw=meta,
        ),
        samples=sorted((_sample(s, raw.meta.gpu) for s in raw.samples), key=lambda s: s.t),
        events=[_event(e) for e in raw.events],
    )


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and parse a trace file; any problem is one `InputError` line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"trace file not found: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read trace {path}: {error.strerror or error}") from None
    return parse_trace(data, name=str(path))


def default_seed_path() -> Path:
    """The recording shipped with the package, the default "seed" GPU source."""
    # The wheel installs package data as plain files, so the resource is a real path.
    return Path(str(files("gpucost.runtime").joinpath("data", SEED_TRACE)))
