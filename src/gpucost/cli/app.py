"""The Typer application: parses options, calls one library function, renders."""

from __future__ import annotations

import sys

import typer

from gpucost import __version__
from gpucost.cli.output import run_guarded

app = typer.Typer(
    name="gpucost",
    help="What your LLM tokens cost on GPUs: deploy, prove and read the pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpucost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """What your LLM tokens cost on GPUs."""


def _register() -> None:
    # Each command module adds itself to `app`; imported here so `--help` lists them all.
    # One line per module: add yours below.
    import gpucost.cli.down
    import gpucost.cli.init
    import gpucost.cli.logs
    import gpucost.cli.produce
    import gpucost.cli.ssh
    import gpucost.cli.status
    import gpucost.cli.up
    import gpucost.cli.verify  # noqa: F401
    from gpucost.cli import (
        replay,  # noqa: F401
        report,  # noqa: F401
    )


_register()


def main() -> None:
    sys.exit(run_guarded(app))
