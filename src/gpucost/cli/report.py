"""`gpucost report`: what tokens cost, from the windows and usage the processor stored."""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpucost.cli.output import console, err_console
from gpucost.config.settings import load_config
from gpucost.errors import ConfigError
from gpucost.report.plot import check_png_path
from gpucost.report.summary import BY_CHOICES, By, Report, Row
from gpucost.state import StateDir

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STATE_ROOT = Path(".gpucost")


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _SECONDS[match.group(2)] if match else 0.0
    if not seconds > 0:
        raise ConfigError(f"--since must look like 90s, 15m, 1h or 2d, got {text!r}")
    return seconds


@contextmanager
def _database_uri(deployment: str | None, config_file: Path | None) -> Iterator[str]:
    """MONGODB_URI when set (the local pipeline), else the deployment's, over SSH."""
    uri = os.environ.get("MONGODB_URI")
    if uri and deployment is None and config_file is None:
        # Never a flag: a URI carries a password, and argv is visible to every local user.
        yield uri
        return
    config = load_config(config_file, deployment=deployment)
    state = StateDir.of(config)
    if not state.exists():
        raise ConfigError(
            f"MONGODB_URI is not set and there is no deployment in {state.path}",
            hint="export MONGODB_URI (e.g. `set -a; . .services/env`) or run `gpucost up`",
        )
    from gpucost.report.tunnel import deployment_uri  # paramiko: only for a deployment

    with deployment_uri(config) as tunnelled:
        yield tunnelled


def _sig(value: float | None, decimals: int = 4) -> str:
    """Short numbers, unit in the header: 1,234 / 12.35 / 0.0389 / <.0001."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    if 0 < value < 10**-decimals:
        return "<." + "0" * (decimals - 1) + "1"
    return f"{value:.{decimals}f}"


def _count(value: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def _cells(r: Row) -> list[str]:
    return [
        escape(r.key),
        _count(r.total_tokens),
        _sig(r.gpu_hours),
        _sig(r.cost_usd),
        _sig(r.busy_cost_usd),
        _sig(r.allocated_cost_usd),
        _sig(r.usd_per_million_tokens, 3),
        _sig(r.usd_per_million_output_tokens, 3),
        _sig(None if r.usd_per_request is None else r.usd_per_request * 1000, 3),
        _sig(r.joules_per_token),
        "-" if r.mean_power_w is None else f"{r.mean_power_w:.0f}",
        "-" if r.mean_gpu_util_pct is None else f"{r.mean_gpu_util_pct:.0f}",
    ]


def _title(report: Report, since: str) -> str:
    price = ", ".join(f"${p:g}" for p in report.stored_prices_per_hour_usd) or "unknown"
    if report.what_if_price_per_hour_usd is not None:
        price = f"what-if ${report.what_if_price_per_hour_usd:g} (stored {price})"
    return f"last {since} · {len(report.windows)} windows · {price} per GPU-hour"


# Two-line headers and one space between columns: twelve columns in 80.
_HEADERS = (
    "tokens",
    "GPU\nhours",
    "cost\n$",
    "busy\n$",
    "alloc\n$",
    "$/1M\ntok",
    "$/1M\nout",
    "$/1k\nreq",
    "J per\ntoken",
    "mean\nW",
    "util\n%",
)


def _table(report: Report, since: str) -> Table:
    table = Table(
        title=_title(report, since),
        title_justify="left",
        box=None,
        padding=(0, 1, 0, 0),
        header_style="bold underline",
    )
    table.add_column({"gpu": "GPU"}.get(report.by, report.by), overflow="fold")
    for header in _HEADERS:
        table.add_column(header, justify="right", no_wrap=True)
    for row in report.rows:
        table.add_row(*_cells(row))
    if len(report.rows) > 1:
        table.add_row(*_cells(report.total), style="bold")
    return table


def report(
    since: Annotated[str, typer.Option(help="How far back: 90s, 15m, 1h, 2d.")] = "1h",
    by: Annotated[str, typer.Option(help="One row per gpu, model or tenant.")] = "gpu",
    price_per_hour: Annotated[
        float | None,
        typer.Option(help="What-if: recompute at this USD per GPU-hour (stored data untouched)."),
    ] = None,
    png: Annotated[
        Path | None, typer.Option(help="Also draw $/1M tokens, tokens/s and power to this PNG.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, and nothing else.")] = False,
    deployment: Annotated[
        str | None,
        typer.Option(help="Read this deployment's database over SSH [default: MONGODB_URI]."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="GPUCOST_CONFIG", help="Deployment settings file."),
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="MongoDB database [default: the URI's, else gpucost].")
    ] = None,
    collection_prefix: Annotated[
        str,
        typer.Option(
            envvar="MONGODB_COLLECTION_PREFIX",
            hidden=True,
            help="Collection name prefix, as the processor's setting of that name.",
        ),
    ] = "",
) -> None:
    """What tokens cost: per GPU, model or tenant, from the processor's stored windows.

    Example: gpucost report --since 15m --by model --png cost.png
    """
    # Every input is checked before the database is touched.
    window = parse_duration(since)
    if by not in BY_CHOICES:
        raise ConfigError(f"--by must be gpu, model or tenant, got {by!r}")
    if price_per_hour is not None and not (math.isfinite(price_per_hour) and price_per_hour >= 0):
        raise ConfigError(f"--price-per-hour must be a number >= 0, got {price_per_hour}")
    check_png_path(png)
    from gpucost.report.source import read_report  # pymongo: only when a report is read

    group: By = "tenant" if by == "tenant" else "model" if by == "model" else "gpu"
    with _database_uri(deployment, config) as uri:
        result = read_report(
            uri,
            since_s=window,
            now=time.time(),
            by=group,
            price_per_hour_usd=price_per_hour,
            database=database,
            prefix=collection_prefix,
        )
    if png is not None:
        from gpucost.report.plot import render_png, timeline_from_windows

        timeline = timeline_from_windows(
            result.windows,
            price_per_hour_usd=price_per_hour,
            stored_prices=result.stored_prices_per_hour_usd,
            where=f"last {since}",
        )
        render_png(timeline, png)
    if as_json:
        # Plain stdout, not rich: rich would wrap and colour, and break `| jq`.
        typer.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        console.print(_table(result, since))
        if result.uncosted_events:
            n = result.uncosted_events
            console.print(
                f"[yellow]{n:,} {'event is' if n == 1 else 'events are'} in windows not "
                "costed yet: counted in tokens, not in cost[/]"
            )
    if png is not None:
        # On stderr with --json, so stdout stays one JSON document.
        (err_console if as_json else console).print(f"wrote {png}", highlight=False)
