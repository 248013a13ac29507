"""Turns user-facing errors into one line and a named exit status."""

from __future__ import annotations

import typer
from rich.console import Console

from gpucost.errors import ExitStatus, GpucostError, MissingDependency

console = Console()
err_console = Console(stderr=True)


def fail(error: GpucostError) -> ExitStatus:
    err_console.print(f"[bold red]error:[/] {error.one_line()}", highlight=False, soft_wrap=True)
    return error.exit_status


def run_guarded(app: typer.Typer) -> int:
    """Run the app in click's standalone mode (usage errors exit 2 by themselves);
    a GpucostError becomes one line and its exit status instead of a traceback, and so
    does a package that a command imports on use (paramiko, boto3, matplotlib) but
    that this install lacks."""
    try:
        app()
    except GpucostError as error:
        return int(fail(error))
    except ModuleNotFoundError as error:
        missing = MissingDependency.for_import(error)
        if missing is None:
            raise
        return int(fail(missing))
    return int(ExitStatus.OK)
