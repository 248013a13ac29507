"""`gpucost replay`: what a recorded trace would have cost, offline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gpucost.cli.output import console, err_console
from gpucost.errors import ConfigError
from gpucost.report.plot import check_png_path
from gpucost.report.replay import ReplayResult, Summary, replay_trace
from gpucost.runtime.trace import load_trace


def _check(price_per_hour: float, window: float, electricity_usd_per_kwh: float | None) -> None:
    # Checked here, before any work, so the user gets one line naming the option
    # rather than the library's ValueError.
    if not (math.isfinite(price_per_hour) and price_per_hour >= 0):
        raise ConfigError(f"--price-per-hour must be a number >= 0, got {price_per_hour}")
    if not (math.isfinite(window) and window > 0):
        raise ConfigError(f"--window must be a number of seconds > 0, got {window}")
    if electricity_usd_per_kwh is not None and not (
        math.isfinite(electricity_usd_per_kwh) and electricity_usd_per_kwh >= 0
    ):
        raise ConfigError(
            f"--electricity-usd-per-kwh must be a number >= 0, got {electricity_usd_per_kwh}"
        )


def replay(
    trace: Annotated[
        Path, typer.Argument(metavar="TRACE", help="A recorded trace.json (meta, samples, events).")
    ],
    price_per_hour: Annotated[
        float, typer.Option("--price-per-hour", help="What the GPU costs, USD per hour.")
    ],
    window: Annotated[float, typer.Option("--window", help="Window width in seconds.")] = 10.0,
    electricity_usd_per_kwh: Annotated[
        float | None,
        typer.Option(help="Electricity price, USD per kWh: adds the energy cost."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON, and nothing else.")
    ] = False,
    png: Annotated[
        Path | None,
        typer.Option(help="Also draw $/1M tokens, tokens/s and power, phases marked, to this PNG."),
    ] = None,
) -> None:
    """Replay a recorded GPU trace through the cost engine: cost per token, per phase.

    Example: gpucost replay trace.json --price-per-hour 3.5
    """
    _check(price_per_hour, window, electricity_usd_per_kwh)
    check_png_path(png)
    recording = load_trace(trace)
    result = replay_trace(
        recording,
        price_per_hour_usd=price_per_hour,
        window_s=window,
        electricity_usd_per_kwh=electricity_usd_per_kwh,
    )
    if as_json:
        # Plain stdout, not rich: rich would wrap and colour, and break `| jq`.
        typer.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        _render(trace, result)
    if png is not None:
        # matplotlib only now: it takes a second to import, which --help must not pay.
        from gpucost.report.plot import render_png, timeline_from_replay

        render_png(timeline_from_replay(recording, result, trace.name), png)
        # On stderr with --json, so stdout stays one JSON document.
        (err_console if as_json else console).print(f"wrote {png}", highlight=False)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _render(path: Path, result: ReplayResult) -> None:
    total = result.total
    console.print(
        f"[bold]{path}[/]: {total.windows} windows of {result.window_s:g} s "
        f"at ${result.price_per_hour_usd:g}/h"
    )
    console.print(
        f"  tokens {total.total_tokens:,} ({total.completion_tokens:,} output) "
        f"in {total.requests:,} requests"
    )
    console.print(
        f"  cost ${total.cost_usd:.4f}, busy ${_num(total.busy_cost_usd, '.4f')}, "
        f"idle windows ${result.unallocated_cost_usd:.4f}; "
        f"${_num(total.usd_per_million_tokens, '.3f')} per 1M tokens"
    )
    energy = (
        f"  energy {_num(total.energy_j, ',.0f')} J, {_num(total.joules_per_token, '.4f')} J/token"
    )
    if total.energy_cost_usd is not None:
        energy += f", electricity ${total.energy_cost_usd:.4f}"
    console.print(energy)
    if result.unattributed_events:
        console.print(
            f"  [yellow]{len(result.unattributed_events)} events fell outside every "
            "sampled window and are not counted[/]"
        )
    console.print(_phase_table(result.by_phase))
    for model, share in result.by_model.items():
        console.print(
            f"  model [bold]{model}[/]: {share.total_tokens:,} tokens, "
            f"${share.cost_usd:.4f} allocated, "
            f"${_num(share.usd_per_million_tokens, '.3f')}/1M tokens"
        )


def _phase_table(by_phase: dict[str, Summary]) -> Table:
    # Simple box, no wrapping: the table must stay readable in an 80-column terminal.
    table = Table(
        title="By phase (most common sample label per window)", box=box.SIMPLE, pad_edge=False
    )
    table.add_column("phase", no_wrap=True)
    for header in ("win", "tokens", "cost $", "$/1M tok", "J/tok", "W", "util %"):
        table.add_column(header, justify="right", no_wrap=True)
    for phase, s in by_phase.items():
        table.add_row(
            phase,
            str(s.windows),
            f"{s.total_tokens:,}",
            f"{s.cost_usd:.4f}",
            _num(s.usd_per_million_tokens, ".3f"),
            _num(s.joules_per_token, ".4f"),
            _num(s.mean_power_w, ".0f"),
            _num(s.mean_gpu_util_pct, ".1f"),
        )
    return table
