"""What tokens cost, read back from what the processor stored: per GPU, model or tenant.

Reads only. The stored windows are the truth; a what-if price is applied here and
never written back. Costs are linear in the price, so a what-if recomputes each
window's cost as `price × window_s / 3600` and divides it exactly as the processor
did: by tokens, within the window.

Pure: documents in, rows out. Reading them from MongoDB is `report.source`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gpucost.costmath import ratio, sum_all, sum_known, window_price
from gpucost.errors import GpucostError

Doc = dict[str, Any]
By = Literal["gpu", "model", "tenant"]
BY_CHOICES: tuple[By, ...] = ("gpu", "model", "tenant")
NO_TENANT = "(none)"
"""The tenant row of events that name none: version 1 events, requests without a key."""


class NoData(GpucostError):
    """The query ran and found nothing to report."""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: a GPU, a model, or the total. None means unknown."""

    key: str
    windows: int
    gpu_hours: float
    requests: int
    total_tokens: int
    completion_tokens: int
    cost_usd: float
    """Per GPU: what the GPU cost, idle or busy. Per model: its allocated share."""
    busy_cost_usd: float | None
    allocated_cost_usd: float
    """What requests were given; per GPU the rest is idle time no request pays for."""
    energy_j: float | None
    mean_power_w: float | None
    mean_gpu_util_pct: float | None

    @property
    def unallocated_cost_usd(self) -> float:
        return self.cost_usd - self.allocated_cost_usd

    @property
    def usd_per_million_tokens(self) -> float | None:
        return ratio(self.cost_usd * 1e6, self.total_tokens)

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        return ratio(self.cost_usd * 1e6, self.completion_tokens)

    @property
    def usd_per_request(self) -> float | None:
        return ratio(self.cost_usd, self.requests)

    @property
    def joules_per_token(self) -> float | None:
        return ratio(self.energy_j, self.total_tokens)

    def to_dict(self) -> Doc:
        return {
            **asdict(self),
            "unallocated_cost_usd": self.unallocated_cost_usd,
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
            "usd_per_request": self.usd_per_request,
            "joules_per_token": self.joules_per_token,
        }


@dataclass(frozen=True, slots=True)
class Report:
    by: By
    since_s: float
    rows: list[Row]
    total: Row
    what_if_price_per_hour_usd: float | None
    stored_prices_per_hour_usd: list[float]
    windows: list[Doc] = field(repr=False)
    """The `gpu_metrics` documents read, oldest first: what `--png` draws."""
    uncosted_events: int = 0
    """Events whose window was not written yet: in the token counts, not in any cost."""

    @property
    def gpus(self) -> list[str]:
        return sorted({gpu_label(w) for w in self.windows})

    def to_dict(self) -> Doc:
        return {
            "by": self.by,
            "since_s": self.since_s,
            "what_if_price_per_hour_usd": self.what_if_price_per_hour_usd,
            "stored_prices_per_hour_usd": self.stored_prices_per_hour_usd,
            "windows": len(self.windows),
            "gpus": self.gpus,
            "uncosted_events": self.uncosted_events,
            "rows": [r.to_dict() for r in self.rows],
            "total": self.total.to_dict(),
        }


def number(value: Any) -> float | None:
    """A stored reading as a finite float; None for missing, null or NaN (never 0)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def stored_window_cost(window: Doc, price_per_hour_usd: float | None = None) -> float:
    """The window's cost: stored, or at the what-if price."""
    if price_per_hour_usd is not None:
        return window_price(price_per_hour_usd, float(window["window_s"]))
    return number(window.get("cost_usd")) or 0.0


def _busy(window: Doc, cost: float) -> float | None:
    util = number(window.get("mean_gpu_util_pct"))
    return None if util is None else cost * util / 100


def _weighted_mean(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    known = [(v, w) for v, w in pairs if v is not None and w > 0]
    weight = math.fsum(w for _, w in known)
    return math.fsum(v * w for v, w in known) / weight if weight else None


# ---- per GPU -------------------------------------------------------------------------


def summarize_windows(key: str, windows: Sequence[Doc], price: float | None = None) -> Row:
    """One row over `windows` (one GPU's, or all of them for the total)."""
    costs = [stored_window_cost(w, price) for w in windows]
    seconds = [float(w["window_s"]) for w in windows]
    tokens = [int(w.get("total_tokens") or 0) for w in windows]
    return Row(
        key=key,
        windows=len(windows),
        gpu_hours=math.fsum(seconds) / 3600,
        requests=sum(int(w.get("requests") or 0) for w in windows),
        total_tokens=sum(tokens),
        completion_tokens=sum(int(w.get("completion_tokens") or 0) for w in windows),
        cost_usd=math.fsum(costs),
        busy_cost_usd=sum_known([_busy(w, c) for w, c in zip(windows, costs, strict=True)]),
        allocated_cost_usd=math.fsum(c for c, t in zip(costs, tokens, strict=True) if t),
        energy_j=sum_all([number(w.get("energy_j")) for w in windows]),
        mean_power_w=_weighted_mean(
            (number(w.get("mean_power_w")), s) for w, s in zip(windows, seconds, strict=True)
        ),
        mean_gpu_util_pct=_weighted_mean(
            (number(w.get("mean_gpu_util_pct")), s) for w, s in zip(windows, seconds, strict=True)
        ),
    )


def gpu_label(window: Mapping[str, Any]) -> str:
    """How a report names a GPU: `node/gpu`, since GPU 0 exists on every node."""
    node = window.get("node")
    return f"{node}/{window['gpu']}" if node else str(window["gpu"])


def by_gpu(windows: Sequence[Doc], price: float | None = None) -> list[Row]:
    grouped: dict[str, list[Doc]] = {}
    for window in windows:
        grouped.setdefault(gpu_label(window), []).append(window)
    return [summarize_windows(gpu, rows, price) for gpu, rows in sorted(grouped.items())]


# ---- per model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelWindow:
    """One model's (or tenant's) events in one window, as the server's $group returns them."""

    model: str
    """The group's key: the model, or the tenant for a report by tenant."""
    gpu: str
    window_start: float
    requests: int
    total_tokens: int
    completion_tokens: int
    allocated_cost_usd: float | None
    """The stored shares' sum; None while any of them is not filled in."""
    uncosted: int = 0
    node: str = ""


def _window_key(node: str | None, gpu: str, start: float) -> tuple[str, str, float]:
    return (str(node or ""), str(gpu), float(start))


def by_model(
    shares: Sequence[ModelWindow], windows: Sequence[Doc], price: float | None = None
) -> list[Row]:
    """Each model's share of the windows its requests fell in, by tokens.

    Without a what-if price the stored allocations are used as they are; with one,
    each share is `window cost at that price × model tokens / window tokens`.
    Energy, GPU time and busy cost are divided the same way.
    """
    index = {_window_key(w.get("node"), w["gpu"], w["window_start"]): w for w in windows}
    parts: dict[str, list[tuple[ModelWindow, Doc | None, float]]] = {}
    for share in shares:
        window = index.get(_window_key(share.node, share.gpu, share.window_start))
        window_tokens = int(window.get("total_tokens") or 0) if window else 0
        # A window written before its last events arrived counts fewer tokens than its
        # events do; until the processor rewrites it, cap the fraction at the whole.
        fraction = min(1.0, share.total_tokens / window_tokens) if window_tokens else 0.0
        parts.setdefault(share.model, []).append((share, window, fraction))
    return [_model_row(model, rows, price) for model, rows in sorted(parts.items())]


def _model_row(
    model: str, parts: Sequence[tuple[ModelWindow, Doc | None, float]], price: float | None
) -> Row:
    allocated: list[float] = []
    busy: list[float | None] = []
    energy: list[float | None] = []
    seconds: list[float] = []
    power: list[tuple[float | None, float]] = []
    util: list[tuple[float | None, float]] = []
    for share, window, fraction in parts:
        if window is None:
            # Events whose window is not written yet: counted, but nothing to divide.
            energy.append(None)
            continue
        cost = stored_window_cost(window, price)
        if price is None and share.allocated_cost_usd is not None:
            allocated.append(share.allocated_cost_usd)
        else:
            allocated.append(cost * fraction)
        b = _busy(window, cost)
        busy.append(None if b is None else b * fraction)
        e = number(window.get("energy_j"))
        energy.append(None if e is None else e * fraction)
        seconds.append(float(window["window_s"]) * fraction)
        power.append((number(window.get("mean_power_w")), seconds[-1]))
        util.append((number(window.get("mean_gpu_util_pct")), seconds[-1]))
    cost = math.fsum(allocated)
    return Row(
        key=model,
        windows=len({(s.gpu, s.window_start) for s, _, _ in parts}),
        gpu_hours=math.fsum(seconds) / 3600,
        requests=sum(s.requests for s, _, _ in parts),
        total_tokens=sum(s.total_tokens for s, _, _ in parts),
        completion_tokens=sum(s.completion_tokens for s, _, _ in parts),
        cost_usd=cost,
        busy_cost_usd=sum_known(busy),
        allocated_cost_usd=cost,
        energy_j=sum_all(energy),
        mean_power_w=_weighted_mean(power),
        mean_gpu_util_pct=_weighted_mean(util),
    )


def total_of(rows: Sequence[Row], key: str = "all") -> Row:
    """The sum of rows that do not overlap (models)."""
    seconds = [r.gpu_hours for r in rows]
    return Row(
        key=key,
        windows=sum(r.windows for r in rows),
        gpu_hours=math.fsum(seconds),
        requests=sum(r.requests for r in rows),
        total_tokens=sum(r.total_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        cost_usd=math.fsum(r.cost_usd for r in rows),
        busy_cost_usd=sum_known([r.busy_cost_usd for r in rows]),
        allocated_cost_usd=math.fsum(r.allocated_cost_usd for r in rows),
        energy_j=sum_all([r.energy_j for r in rows]),
        mean_power_w=_weighted_mean((r.mean_power_w, r.gpu_hours) for r in rows),
        mean_gpu_util_pct=_weighted_mean((r.mean_gpu_util_pct, r.gpu_hours) for r in rows),
    )


def summarize(
    windows: Sequence[Doc],
    *,
    by: By = "gpu",
    shares: Sequence[ModelWindow] = (),
    price_per_hour_usd: float | None = None,
    since_s: float = 0.0,
) -> Report:
    """The whole report from documents already read: pure, no I/O."""
    ordered = sorted(windows, key=lambda w: (float(w["window_start"]), gpu_label(w)))
    if by == "gpu":
        rows = by_gpu(ordered, price_per_hour_usd)
        total = summarize_windows("all", ordered, price_per_hour_usd)
    else:
        # Tenants share windows as models do: the same division by tokens.
        rows = by_model(shares, ordered, price_per_hour_usd)
        total = total_of(rows)
    prices = {number(w.get("price_per_hour_usd")) for w in ordered}
    return Report(
        by=by,
        since_s=since_s,
        rows=rows,
        total=total,
        what_if_price_per_hour_usd=price_per_hour_usd,
        stored_prices_per_hour_usd=sorted(p for p in prices if p is not None),
        windows=ordered,
        uncosted_events=sum(s.uncosted for s in shares),
    )
