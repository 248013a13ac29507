"""One picture of cost over time: $ per 1M tokens, tokens/s and GPU power, stacked.

The same picture for a live deployment (`gpucost report --png`, from the stored
windows) and for a recording (`gpucost replay --png`, from the replayed windows,
with the trace's phases marked). matplotlib is imported inside `render_png` only:
it costs about a second to import, which `--help` and every other command must not
pay. The figure is drawn on matplotlib's Agg canvas directly (no pyplot), so nothing
global is touched and no display is needed.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpucost.errors import InputError, MissingDependency
from gpucost.report.summary import gpu_label, number, stored_window_cost

if TYPE_CHECKING:
    from gpucost.report.replay import ReplayResult
    from gpucost.runtime.trace import Trace

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.0, 100
"""1200×700: what a terminal screenshot or a chat preview shows without zooming."""
LOG_SPAN = 20.0
"""$/1M tokens spanning more than this factor is drawn on a log scale."""
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
PHASE_SHADE = "#ececec"
BAR = "#3b75af"


@dataclass(frozen=True, slots=True)
class WindowPoint:
    start: float
    window_s: float
    total_tokens: int
    cost_usd: float
    mean_power_w: float | None

    @property
    def usd_per_million_tokens(self) -> float | None:
        return self.cost_usd * 1e6 / self.total_tokens if self.total_tokens else None

    @property
    def tokens_per_s(self) -> float:
        return self.total_tokens / self.window_s


@dataclass(frozen=True, slots=True)
class Phase:
    """A labelled stretch of a recording; `usd_per_million_tokens` is drawn across it."""

    label: str
    start: float
    end: float
    usd_per_million_tokens: float | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    title: str
    subtitle: str
    origin: float
    """Unix time of x = 0."""
    windows: Mapping[str, Sequence[WindowPoint]]
    """Per GPU, oldest first."""
    power_samples: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)
    """Per GPU (t, W) at the source's rate, drawn instead of the windows' mean power."""
    phases: Sequence[Phase] = ()


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _price_text(prices: Sequence[float]) -> str:
    if not prices:
        return "price unknown"
    return " / ".join(f"${p:,.2f}" for p in prices) + " per GPU-hour"


# ---- building timelines --------------------------------------------------------------


def timeline_from_windows(
    windows: Sequence[Mapping[str, Any]],
    *,
    price_per_hour_usd: float | None = None,
    stored_prices: Sequence[float] = (),
    where: str = "",
) -> Timeline:
    """From `gpu_metrics` documents; a what-if price recomputes each window's cost."""
    if not windows:
        raise InputError("no windows to draw")
    series: dict[str, list[WindowPoint]] = {}
    for w in sorted(windows, key=lambda w: float(w["window_start"])):
        series.setdefault(gpu_label(w), []).append(
            WindowPoint(
                start=float(w["window_start"]),
                window_s=float(w["window_s"]),
                total_tokens=int(w.get("total_tokens") or 0),
                cost_usd=stored_window_cost(dict(w), price_per_hour_usd),
                mean_power_w=number(w.get("mean_power_w")),
            )
        )
    origin = min(p.start for points in series.values() for p in points)
    tokens = sum(p.total_tokens for points in series.values() for p in points)
    cost = math.fsum(p.cost_usd for points in series.values() for p in points)
    price = (
        f"what-if ${price_per_hour_usd:,.2f} per GPU-hour"
        if price_per_hour_usd is not None
        else _price_text(stored_prices)
    )
    sources = sorted({str(w["source"]) for w in windows if w.get("source")})
    gpus = ", ".join(f"GPU {g}" for g in sorted(series))
    per_m = f"${cost * 1e6 / tokens:,.3f} per 1M tokens" if tokens else "no tokens"
    return Timeline(
        title=f"{per_m} on {gpus} at {price}",
        subtitle=" · ".join(
            part
            for part in (
                where,
                f"{sum(len(p) for p in series.values())} windows",
                f"{tokens:,} tokens",
                f"${cost:,.4f}",
                f"source {', '.join(sources)}" if sources else "",
            )
            if part
        ),
        origin=origin,
        windows=series,
    )


def _phase_spans(trace: Trace) -> list[tuple[str, float, float]]:
    """Contiguous runs of one label in the first GPU's samples."""
    spans: list[tuple[str, float, float]] = []
    first_gpu = min((s.gpu_index for s in trace.samples), default=0)
    for sample in trace.samples:
        if sample.gpu_index != first_gpu or sample.phase is None:
            continue
        if spans and spans[-1][0] == sample.phase:
            spans[-1] = (sample.phase, spans[-1][1], sample.t)
        else:
            spans.append((sample.phase, sample.t, sample.t))
    return spans


def timeline_from_replay(trace: Trace, result: ReplayResult, name: str = "") -> Timeline:
    """From a replayed recording: its windows, its power at full rate, its phases.

    A phase's $/1M is the one `gpucost replay` prints for it (windows grouped by their
    most common label), so the picture and the table agree.
    """
    series: dict[str, list[WindowPoint]] = {}
    for w in result.windows:
        c = w.cost
        series.setdefault(c.gpu, []).append(
            WindowPoint(c.window_start, c.window_s, c.total_tokens, c.cost_usd, c.mean_power_w)
        )
    if not series:
        raise InputError("the trace has no GPU samples to draw")
    power: dict[str, list[tuple[float, float]]] = {}
    for s in trace.samples:
        if s.power_w is not None:
            power.setdefault(str(s.gpu_index), []).append((s.t, s.power_w))
    phases = [
        Phase(label, start, end, result.by_phase[label].usd_per_million_tokens)
        if label in result.by_phase
        else Phase(label, start, end)
        for label, start, end in _phase_spans(trace)
    ]
    total = result.total
    gpu = trace.meta.gpu_name or ", ".join(f"GPU {g}" for g in sorted(series))
    per_m = total.usd_per_million_tokens
    head = f"${per_m:,.3f} per 1M tokens" if per_m is not None else "no tokens"
    model = f"{trace.meta.model} · " if trace.meta.model else ""
    return Timeline(
        title=f"{head} on {gpu} at ${result.price_per_hour_usd:,.2f} per GPU-hour",
        subtitle=(
            f"{name + ' · ' if name else ''}{model}{total.windows} windows of "
            f"{result.window_s:g} s · {total.total_tokens:,} tokens · ${total.cost_usd:,.4f}"
        ),
        origin=trace.samples[0].t if trace.samples else min(p[0].start for p in series.values()),
        windows=series,
        power_samples=power,
        phases=phases,
    )


# ---- drawing -------------------------------------------------------------------------


def _short(label: str) -> str:
    """decode_bs128 → bs128; idle_before_bs8 → idle; model_load → load."""
    if label.startswith("decode_"):
        return label.removeprefix("decode_")
    if label.startswith("idle"):
        return "idle"
    return label.removeprefix("model_")


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 else f"${value:.3f}"


def check_png_path(path: Path | None) -> None:
    """Refuse a PNG path that cannot be written before any work is done."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: no directory {path.parent}")
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependency("matplotlib", "--png")


def render_png(timeline: Timeline, path: Path) -> Path:
    """Draw `timeline` into a PNG at `path` (1200×700) and return the path."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    style: dict[Any, Any] = {
        "font.size": 14,
        "axes.titlesize": 15,
        "axes.labelsize": 14,
        "xtick.labelsize": 13,
        "ytick.labelsize": 13,
        "axes.spines.top": False,
        "axes.spines.right": False,
        # Dollar signs are money here, not TeX.
        "text.parse_math": False,
    }
    with rc_context(style):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
        cost_ax, rate_ax, power_ax = fig.subplots(
            3, 1, sharex=True, gridspec_kw={"height_ratios": [1.5, 1, 1]}
        )
        t0 = timeline.origin
        span = max(p.start + p.window_s for pts in timeline.windows.values() for p in pts) - t0
        scale, unit = (60.0, "minutes") if span > 900 else (1.0, "seconds")

        def x(t: float) -> float:
            return (t - t0) / scale

        _draw_phases(timeline.phases, (cost_ax, rate_ax, power_ax), x)
        per_m: list[float] = []
        several = len(timeline.windows) > 1
        for i, (gpu, points) in enumerate(sorted(timeline.windows.items())):
            colour = COLOURS[i % len(COLOURS)] if several else BAR
            label = f"GPU {gpu}" if several else None
            costed = [p for p in points if p.usd_per_million_tokens is not None]
            per_m += [p.usd_per_million_tokens for p in costed if p.usd_per_million_tokens]
            cost_ax.bar(
                [x(p.start) for p in costed],
                [p.usd_per_million_tokens or 0 for p in costed],
                width=[p.window_s / scale * 0.92 for p in costed],
                align="edge",
                color=colour,
                alpha=0.75,
                label=label,
            )
            rate_ax.bar(
                [x(p.start) for p in points],
                [p.tokens_per_s for p in points],
                width=[p.window_s / scale * 0.92 for p in points],
                align="edge",
                color=colour,
                alpha=0.8,
            )
            samples = timeline.power_samples.get(gpu)
            if samples:
                power_ax.plot([x(t) for t, _ in samples], [w for _, w in samples], color=colour)
            else:
                xs, ys = _power_steps(points, x)
                power_ax.plot(xs, ys, color=colour, linewidth=2.5)
        _draw_phase_costs(cost_ax, timeline.phases, x)
        rates = [p.tokens_per_s for pts in timeline.windows.values() for p in pts if p.total_tokens]
        # Batch size moves both by decades: on a linear axis the small end is invisible.
        if _spans_decades(per_m):
            cost_ax.set_yscale("log")
            cost_ax.yaxis.set_major_formatter(
                FuncFormatter(lambda v, _: f"${v:,.0f}" if v >= 1 else f"${v:g}")
            )
        else:
            cost_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.2f}"))
        if _spans_decades(rates):
            rate_ax.set_yscale("log")
        if per_m:
            # Headroom for the phase labels and the callout above the tallest bar.
            bottom, top = cost_ax.get_ylim()
            cost_ax.set_ylim(bottom, top * 5 if cost_ax.get_yscale() == "log" else top * 1.4)
        if not per_m:
            cost_ax.text(
                0.5,
                0.5,
                "no tokens in these windows",
                transform=cost_ax.transAxes,
                ha="center",
                va="center",
                color="grey",
            )
        rate_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _rate(v)))
        cost_ax.set_ylabel("$ / 1M tokens")
        rate_ax.set_ylabel("tokens / s")
        power_ax.set_ylabel("GPU power (W)")
        power_ax.set_ylim(bottom=0)
        power_ax.set_xlabel(f"{unit} since {_utc(t0)}")
        for ax in (cost_ax, rate_ax, power_ax):
            ax.grid(axis="y", alpha=0.3)
            ax.set_xlim(0, span / scale)
        if several:
            cost_ax.legend(loc="upper right", fontsize=12)
        fig.suptitle(f"{timeline.title}\n", fontsize=17, fontweight="bold")
        fig.text(0.5, 0.935, timeline.subtitle, ha="center", fontsize=13, color="#444444")
        try:
            fig.savefig(path, format="png")
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def _power_steps(points: Sequence[WindowPoint], x: Any) -> tuple[list[float], list[float]]:
    """Each window's mean power as a flat segment over the window; a window without a
    reading leaves a gap rather than a line drawn across what was not measured."""
    xs: list[float] = []
    ys: list[float] = []
    for point in points:
        if point.mean_power_w is None:
            xs.append(x(point.start))
            ys.append(math.nan)
            continue
        xs += [x(point.start), x(point.start + point.window_s)]
        ys += [point.mean_power_w, point.mean_power_w]
    return xs, ys


def _spans_decades(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_SPAN


def _draw_phases(phases: Sequence[Phase], axes: Sequence[Any], x: Any) -> None:
    for phase in phases:
        if _short(phase.label) not in ("idle", "init"):
            for ax in axes:
                ax.axvspan(x(phase.start), x(phase.end), color=PHASE_SHADE, zorder=0)


def _draw_phase_costs(ax: Any, phases: Sequence[Phase], x: Any) -> None:
    """Each costed phase: a bold line at its $/1M across it, labelled above, and how
    much cheaper the cheapest phase is than the dearest."""
    costed = [p for p in phases if p.usd_per_million_tokens and _short(p.label) != "idle"]
    if len(costed) >= 2:
        dear = max(costed, key=lambda p: p.usd_per_million_tokens or 0)
        cheap = min(costed, key=lambda p: p.usd_per_million_tokens or 0)
        factor = (dear.usd_per_million_tokens or 0) / (cheap.usd_per_million_tokens or 1)
        ax.text(
            0.995,
            0.97,
            f"{_short(cheap.label)}: {factor:,.0f}× cheaper per token than {_short(dear.label)}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=14,
            fontweight="bold",
            color="#b22222",
            bbox={"facecolor": "white", "edgecolor": "#b22222", "pad": 4},
            zorder=5,
        )
    for phase in phases:
        short = _short(phase.label)
        if short in ("idle", "init"):
            continue
        mid = (x(phase.start) + x(phase.end)) / 2
        if phase.usd_per_million_tokens is None:
            ax.text(
                mid,
                0.97,
                short,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=13,
                color="#555555",
            )
            continue
        value = phase.usd_per_million_tokens
        ax.hlines(value, x(phase.start), x(phase.end), color="black", linewidth=3, zorder=3)
        ax.annotate(
            f"{short}\n{_money(value)}/1M",
            (mid, value),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=13,
            fontweight="bold",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
            zorder=4,
        )
