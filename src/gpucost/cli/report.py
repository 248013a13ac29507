"""`gpucost report`: cost per token from the windows stored in MongoDB."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gpucost.cli.app import app
from gpucost.cli.output import console
from gpucost.errors import ConfigError
from gpucost.report import GpuReport, fetch_windows, summarize_windows

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"--since must look like 90s, 15m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _money(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(reports: list[GpuReport], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    for header in ("GPU", "tokens", "GPU-h", "cost", "$/1M tok", "$/1M out", "J/tok", "W", "util"):
        table.add_column(header, justify="left" if header == "GPU" else "right")
    for r in reports:
        table.add_row(
            r.gpu,
            f"{r.total_tokens:,}",
            f"{r.gpu_hours:.3f}",
            _money(r.cost_usd),
            _money(r.usd_per_million_tokens, 3),
            _money(r.usd_per_million_output_tokens, 3),
            _number(r.joules_per_token, ".4f"),
            _number(r.mean_power_w, ".0f"),
            "-" if r.mean_gpu_util_pct is None else f"{r.mean_gpu_util_pct:.0f}%",
        )
    return table


@app.command()
def report(
    since: Annotated[str, typer.Option(help="How far back: 90s, 15m, 1h, 2d.")] = "1h",
    price_per_hour: Annotated[
        float | None,
        typer.Option(
            help="What-if: recompute costs at this USD per GPU-hour (stored data untouched)."
        ),
    ] = None,
    database: Annotated[str, typer.Option(help="MongoDB database of the pipeline.")] = "gpucost",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, and nothing else.")] = False,
) -> None:
    """Cost per token from the processor's stored windows (MONGODB_URI from the environment).

    Example: MONGODB_URI=... gpucost report --since 15m
    """
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        # Never a flag: a URI carries a password, and argv is visible to every local user.
        raise ConfigError("MONGODB_URI is not set", hint="export it, e.g. from .services/env")
    if price_per_hour is not None and not price_per_hour >= 0:
        raise ConfigError(f"--price-per-hour must be >= 0, got {price_per_hour}")
    window = parse_duration(since)
    windows = fetch_windows(uri, database, window, time.time())
    reports = summarize_windows(windows, price_per_hour)
    if as_json:
        typer.echo(json.dumps({"since_s": window, "gpus": [r.to_dict() for r in reports]}))
        return
    if not reports:
        console.print(f"no windows in the last {since}: is the processor running?")
        raise typer.Exit(1)
    price = "stored prices" if price_per_hour is None else f"what-if ${price_per_hour}/GPU-h"
    console.print(_table(reports, f"last {since}, {len(windows)} windows, {price}"))
