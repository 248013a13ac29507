"""Replay a recorded trace through the cost engine, offline: what would it have cost?

Each GPU gets every window from the one holding its first sample to the one holding
its last, idle ones included (the GPU is paid for either way). An event lands in the
window holding its `ts_end`. Totals are sums over windows; phase and model breakdowns
are the same windows grouped differently, so they add up to the totals.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpucost.costmath import mean, ratio, sum_all, sum_known
from gpucost.runtime.cost import (
    TokenTotals,
    WindowCost,
    allocated_cost_usd,
    allocated_energy_j,
    check_rates,
    cost_of_window,
    window_index,
)
from gpucost.runtime.energy import CumulativeEnergy
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.trace import RecordedEvent, Trace

UNLABELLED = "unlabelled"
"""Phase of a window with no labelled sample in it."""

Json = dict[str, object]


@dataclass(frozen=True, slots=True)
class Summary:
    """Sums over a group of windows (all of them, or one phase)."""

    windows: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    busy_cost_usd: float | None
    """Summed over windows that have samples."""
    energy_j: float | None
    """None unless every window's energy is known: a partial sum would mislead."""
    energy_cost_usd: float | None
    mean_power_w: float | None
    """Mean of all power readings in the group's windows."""
    mean_gpu_util_pct: float | None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_per_token(self) -> float | None:
        return ratio(self.cost_usd, self.total_tokens)

    @property
    def cost_per_output_token(self) -> float | None:
        return ratio(self.cost_usd, self.completion_tokens)

    @property
    def usd_per_million_tokens(self) -> float | None:
        return ratio(self.cost_usd * 1e6, self.total_tokens)

    @property
    def joules_per_token(self) -> float | None:
        return ratio(self.energy_j, self.total_tokens)

    @property
    def joules_per_output_token(self) -> float | None:
        return ratio(self.energy_j, self.completion_tokens)

    def to_dict(self) -> Json:
        return {
            "windows": self.windows,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "busy_cost_usd": self.busy_cost_usd,
            "energy_j": self.energy_j,
            "energy_cost_usd": self.energy_cost_usd,
            "mean_power_w": self.mean_power_w,
            "mean_gpu_util_pct": self.mean_gpu_util_pct,
            "cost_per_token": self.cost_per_token,
            "cost_per_output_token": self.cost_per_output_token,
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "joules_per_token": self.joules_per_token,
            "joules_per_output_token": self.joules_per_output_token,
        }


def _summarise(windows: Sequence[WindowCost], samples: Sequence[GpuSample]) -> Summary:
    energies = [w.energy_j for w in windows]
    energy_costs = [w.energy_cost_usd for w in windows]
    powers = [s.power_w for s in samples if s.power_w is not None]
    utils = [s.gpu_util_pct for s in samples if s.gpu_util_pct is not None]
    return Summary(
        windows=len(windows),
        requests=sum(w.requests for w in windows),
        prompt_tokens=sum(w.prompt_tokens for w in windows),
        completion_tokens=sum(w.completion_tokens for w in windows),
        cost_usd=math.fsum(w.cost_usd for w in windows),
        busy_cost_usd=sum_known([w.busy_cost_usd for w in windows]),
        energy_j=sum_all(energies),
        energy_cost_usd=sum_all(energy_costs),
        mean_power_w=mean(powers),
        mean_gpu_util_pct=mean(utils),
    )


@dataclass(slots=True)
class ModelShare:
    """What one model's requests were allocated, window by window, by their tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    energy_j: float | None = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def usd_per_million_tokens(self) -> float | None:
        return ratio(self.cost_usd * 1e6, self.total_tokens)

    def to_dict(self) -> Json:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "allocated_cost_usd": self.cost_usd,
            "allocated_energy_j": self.energy_j,
            "cost_per_token": ratio(self.cost_usd, self.total_tokens),
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "joules_per_token": ratio(self.energy_j, self.total_tokens),
        }


@dataclass(frozen=True, slots=True)
class PhasedWindow:
    cost: WindowCost
    phase: str
    """Most common phase label among the window's samples."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    price_per_hour_usd: float
    window_s: float
    electricity_usd_per_kwh: float | None
    windows: list[PhasedWindow]
    total: Summary
    by_phase: dict[str, Summary]
    """In order of first appearance."""
    by_model: dict[str, ModelShare]
    unattributed_events: list[RecordedEvent] = field(default_factory=list)
    """Events outside every GPU's sampled windows: their tokens are in no total."""

    @property
    def unallocated_cost_usd(self) -> float:
        """Cost of windows without tokens (idle time): no request's share."""
        return math.fsum(w.cost.cost_usd for w in self.windows if w.cost.total_tokens == 0)

    def to_dict(self) -> Json:
        total = self.total.to_dict()
        total["total_cost_usd"] = total.pop("cost_usd")
        return {
            "price_per_hour_usd": self.price_per_hour_usd,
            "window_s": self.window_s,
            "electricity_usd_per_kwh": self.electricity_usd_per_kwh,
            **total,
            "unallocated_cost_usd": self.unallocated_cost_usd,
            "windows": len(self.windows),
            "gpus": sorted({w.cost.gpu for w in self.windows}),
            "unattributed_events": len(self.unattributed_events),
            "by_phase": {phase: s.to_dict() for phase, s in self.by_phase.items()},
            "by_model": {model: m.to_dict() for model, m in self.by_model.items()},
            "per_window": [{**w.cost.to_dict(), "phase": w.phase} for w in self.windows],
        }


def _phase(samples: Sequence[GpuSample]) -> str:
    labels = Counter(s.phase for s in samples if s.phase is not None)
    return labels.most_common(1)[0][0] if labels else UNLABELLED


def replay_trace(
    trace: Trace,
    *,
    price_per_hour_usd: float,
    window_s: float = 10,
    electricity_usd_per_kwh: float | None = None,
) -> ReplayResult:
    """Cost every window of every GPU in the trace, and sum them three ways."""
    check_rates(window_s, price_per_hour_usd, electricity_usd_per_kwh)
    samples_by_gpu: dict[str, list[GpuSample]] = defaultdict(list)
    for sample in sorted(trace.samples, key=lambda s: s.t):
        samples_by_gpu[str(sample.gpu_index)].append(sample)
    events_by_window: dict[tuple[str, int], list[RecordedEvent]] = defaultdict(list)
    for event in trace.events:
        events_by_window[(event.gpu, window_index(event.ts, window_s))].append(event)

    windows: list[PhasedWindow] = []
    window_samples: list[list[GpuSample]] = []
    window_events: list[list[RecordedEvent]] = []
    for gpu, samples in sorted(samples_by_gpu.items()):
        energy = CumulativeEnergy(samples)  # once per GPU: windows query it in O(log n)
        times = [s.t for s in samples]
        first, last = window_index(times[0], window_s), window_index(times[-1], window_s)
        for k in range(first, last + 1):
            start = k * window_s
            inside = samples[bisect_left(times, start) : bisect_left(times, start + window_s)]
            events = events_by_window.pop((gpu, k), [])
            tokens = TokenTotals()
            for event in events:
                tokens = tokens.add_request(event.prompt_tokens, event.completion_tokens)
            cost = cost_of_window(
                gpu,
                start,
                window_s=window_s,
                samples=inside,
                tokens=tokens,
                price_per_hour_usd=price_per_hour_usd,
                electricity_usd_per_kwh=electricity_usd_per_kwh,
                energy=energy,
            )
            windows.append(PhasedWindow(cost, _phase(inside)))
            window_samples.append(inside)
            window_events.append(events)

    return ReplayResult(
        price_per_hour_usd=price_per_hour_usd,
        window_s=window_s,
        electricity_usd_per_kwh=electricity_usd_per_kwh,
        windows=windows,
        total=_summarise([w.cost for w in windows], [s for ws in window_samples for s in ws]),
        by_phase=_by_phase(windows, window_samples),
        by_model=_by_model(windows, window_events),
        unattributed_events=[e for events in events_by_window.values() for e in events],
    )


def _by_phase(
    windows: Sequence[PhasedWindow], window_samples: Sequence[Sequence[GpuSample]]
) -> dict[str, Summary]:
    grouped: dict[str, tuple[list[WindowCost], list[GpuSample]]] = {}
    for window, samples in zip(windows, window_samples, strict=True):
        costs, group_samples = grouped.setdefault(window.phase, ([], []))
        costs.append(window.cost)
        group_samples.extend(samples)
    return {phase: _summarise(costs, samples) for phase, (costs, samples) in grouped.items()}


def _by_model(
    windows: Sequence[PhasedWindow], window_events: Sequence[Sequence[RecordedEvent]]
) -> dict[str, ModelShare]:
    shares: dict[str, ModelShare] = {}
    for window, events in zip(windows, window_events, strict=True):
        for event in events:
            share = shares.setdefault(event.model, ModelShare())
            share.requests += 1
            share.prompt_tokens += event.prompt_tokens
            share.completion_tokens += event.completion_tokens
            share.cost_usd += allocated_cost_usd(window.cost, event.total_tokens)
            energy = allocated_energy_j(window.cost, event.total_tokens)
            share.energy_j = (
                None if energy is None or share.energy_j is None else (share.energy_j + energy)
            )
    return shares
