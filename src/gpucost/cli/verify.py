"""`gpucost verify`: a table of checks on the running deployment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpucost.cli.options import ConfigOpt, DeploymentOpt, JsonOpt, ProviderOpt
from gpucost.cli.output import console, err_console
from gpucost.cli.render import LiveProgress, print_json
from gpucost.config.settings import load_config
from gpucost.errors import ExitStatus


def verify(
    count: Annotated[int, typer.Option(help="Marked test events to send.", min=1)] = 100,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove the deployment: health, events exactly once with costs, fresh metrics, ports, SSH.

    Example: gpucost verify --json
    """
    from gpucost.remote.verify import as_json as checks_json
    from gpucost.remote.verify import verify as run_verify

    config = load_config(config_file, deployment=deployment, provider=provider)
    with LiveProgress(err_console) as progress:
        checks = run_verify(config, count=count, progress=progress)
    if as_json:
        print_json(checks_json(checks))
    else:
        table = Table(title=f"verify {config.deployment}", title_justify="left")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check in checks:
            mark = "[green]pass[/]" if check.ok else "[bold red]FAIL[/]"
            table.add_row(escape(check.name), mark, escape(check.detail))
        console.print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(int(ExitStatus.ERROR))
