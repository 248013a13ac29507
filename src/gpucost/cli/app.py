"""The Typer application: parses options, calls one library function, renders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

import typer

from gpucost import __version__
from gpucost.cli import down, init, logs, produce, replay, report, ssh, status, up, verify
from gpucost.cli.output import run_guarded

app = typer.Typer(
    name="gpucost",
    help="What your LLM tokens cost on GPUs: deploy, prove and read the pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help text is plain text: "[producers]" and "[default: ...]" are words to show,
    # not rich markup tags to swallow.
    rich_markup_mode=None,
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


# The commands in the order a deployment lives through them: set up, check, use, read,
# tear down. `--help` lists them in this order. The command modules never import this
# one, so there is no import cycle and no order that depends on who imported first.
COMMANDS: Final[tuple[tuple[str, Callable[..., None]], ...]] = (
    ("init", init.init),
    ("up", up.up),
    ("verify", verify.verify),
    ("status", status.status),
    ("ssh", ssh.ssh),
    ("logs", logs.logs),
    ("produce", produce.produce),
    ("report", report.report),
    ("replay", replay.replay),
    ("down", down.down),
)
# `gpucost ssh vm3 -- hostname`: everything after the VM goes to ssh.
_PASS_THROUGH: Final = {"allow_extra_args": True, "ignore_unknown_options": True}

for _name, _command in COMMANDS:
    app.command(_name, context_settings=_PASS_THROUGH if _name == "ssh" else None)(_command)


def main() -> None:
    sys.exit(run_guarded(app))
