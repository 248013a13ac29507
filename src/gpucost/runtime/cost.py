"""The cost of one GPU over one window, and each request's share of it.

Pure: samples and token counts in, a `WindowCost` out. Windows are `[k·W, (k+1)·W)`
in unix seconds, so every process that sees the same timestamp picks the same window.
The GPU is paid for whether busy or idle, so every window costs `price * W / 3600`;
tokens only decide how that cost is divided. Floats throughout, never rounded here:
rounding is for whoever renders the numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gpucost.costmath import mean as _mean
from gpucost.costmath import ratio as _ratio
from gpucost.costmath import window_price
from gpucost.runtime.energy import CumulativeEnergy
from gpucost.runtime.samples import GpuSample

JOULES_PER_KWH = 3.6e6


def ts_ms(ts: float) -> int:
    """A time in whole milliseconds, rounded down: the unit every window key uses."""
    return math.floor(ts * 1000)


def width_ms(window_s: float) -> int:
    """A window width in whole milliseconds; the settings refuse widths that are not."""
    width = round(window_s * 1000)
    if not width > 0:
        raise ValueError(f"window_s must be at least 1 ms, got {window_s}")
    return width


def window_start_ms(ts: float, window_s: float) -> int:
    """Start, in integer milliseconds, of the window of width `window_s` that holds `ts`.

    Integers, because windows are keys: two processes, or an event and an idle window,
    must name a window identically. Floats summed as k·W drift (0.3 · 3 != 0.9), and a
    window keyed two ways is charged twice.
    """
    width = width_ms(window_s)
    return ts_ms(ts) // width * width


def window_index(ts: float, window_s: float) -> int:
    """k such that the window [k·W, (k+1)·W) holds `ts` (in integer milliseconds)."""
    return ts_ms(ts) // width_ms(window_s)


def window_start(ts: float, window_s: float) -> float:
    """Start, in seconds, of the window of width `window_s` that holds `ts`."""
    return window_start_ms(ts, window_s) / 1000


@dataclass(frozen=True, slots=True)
class TokenTotals:
    """Requests and tokens attributed to one window."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenTotals) -> TokenTotals:
        return TokenTotals(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def add_request(self, prompt_tokens: int, completion_tokens: int) -> TokenTotals:
        return self + TokenTotals(1, prompt_tokens, completion_tokens)


@dataclass(frozen=True, slots=True)
class WindowCost:
    """What one GPU cost over one window, and per token. None means unknown, never 0."""

    gpu: str
    window_start: float
    window_end: float
    window_s: float
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    busy_cost_usd: float | None
    """cost_usd * mean utilisation of the window's samples."""
    energy_j: float | None
    energy_cost_usd: float | None
    """Only when an electricity price is given."""
    mean_power_w: float | None
    """Mean of the power readings taken inside the window."""
    mean_gpu_util_pct: float | None
    sample_count: int
    source: str | None
    """The GPU source of the window's samples (nvml, smi, seed); None without samples."""
    cost_per_token: float | None
    cost_per_output_token: float | None
    joules_per_token: float | None
    joules_per_output_token: float | None
    energy_basis: str | None = None
    """How energy_j was found: "counter", "power" (trapezoid), or None."""

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def check_rates(
    window_s: float, price_per_hour_usd: float, electricity_usd_per_kwh: float | None
) -> None:
    """Raise ValueError unless the window is > 0 and the prices are >= 0, all finite."""
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s must be > 0, got {window_s}")
    if not (math.isfinite(price_per_hour_usd) and price_per_hour_usd >= 0):
        raise ValueError(f"price_per_hour_usd must be >= 0, got {price_per_hour_usd}")
    if electricity_usd_per_kwh is not None and not (
        math.isfinite(electricity_usd_per_kwh) and electricity_usd_per_kwh >= 0
    ):
        raise ValueError(f"electricity_usd_per_kwh must be >= 0, got {electricity_usd_per_kwh}")


def cost_of_window(
    gpu: str,
    start: float,
    *,
    window_s: float,
    samples: Sequence[GpuSample],
    tokens: TokenTotals,
    price_per_hour_usd: float,
    electricity_usd_per_kwh: float | None = None,
    energy: CumulativeEnergy | None = None,
) -> WindowCost:
    """Cost of `gpu` over `[start, start + window_s)`.

    `samples` are that GPU's and may reach beyond the window: energy is interpolated
    across its edges. Only those inside the window count for power and utilisation.
    `energy`, if given, must be built from the same GPU's samples; callers costing many
    windows build it once (see `replay`) and may then pass just the window's samples.
    """
    check_rates(window_s, price_per_hour_usd, electricity_usd_per_kwh)
    end = start + window_s
    inside = [s for s in samples if start <= s.t < end]
    powers = [s.power_w for s in inside if s.power_w is not None]
    utils = [s.gpu_util_pct for s in inside if s.gpu_util_pct is not None]
    mean_util = _mean(utils)

    if energy is None:
        energy = CumulativeEnergy(samples)
    energy_j = energy.between(start, end)
    energy_cost = (
        energy_j / JOULES_PER_KWH * electricity_usd_per_kwh
        if energy_j is not None and electricity_usd_per_kwh is not None
        else None
    )

    cost = window_price(price_per_hour_usd, window_s)
    total = tokens.total_tokens
    output = tokens.completion_tokens
    sources = Counter(s.source for s in inside).most_common(1)
    return WindowCost(
        gpu=gpu,
        window_start=start,
        window_end=end,
        window_s=window_s,
        requests=tokens.requests,
        prompt_tokens=tokens.prompt_tokens,
        completion_tokens=output,
        total_tokens=total,
        cost_usd=cost,
        busy_cost_usd=cost * mean_util / 100 if mean_util is not None else None,
        energy_j=energy_j,
        energy_cost_usd=energy_cost,
        mean_power_w=_mean(powers),
        mean_gpu_util_pct=mean_util,
        sample_count=len(inside),
        source=sources[0][0] if sources else None,
        cost_per_token=_ratio(cost, total),
        cost_per_output_token=_ratio(cost, output),
        joules_per_token=_ratio(energy_j, total),
        joules_per_output_token=_ratio(energy_j, output),
        energy_basis=energy.basis if energy_j is not None else None,
    )


def _share(amount: float, window: WindowCost, tokens: int) -> float:
    if not 0 <= tokens <= window.total_tokens:
        raise ValueError(f"{tokens} tokens is not a share of a window of {window.total_tokens}")
    if tokens == 0:
        return 0.0
    return amount * tokens / window.total_tokens


def allocated_cost_usd(window: WindowCost, tokens: int) -> float:
    """One request's share of the window's cost, by its tokens (prompt + completion)."""
    return _share(window.cost_usd, window, tokens)


def allocated_energy_j(window: WindowCost, tokens: int) -> float | None:
    """One request's share of the window's energy, by its tokens; None if energy unknown."""
    return None if window.energy_j is None else _share(window.energy_j, window, tokens)
