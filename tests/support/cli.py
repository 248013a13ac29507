"""Run the `gpucost` CLI in-process the way `main()` does, for CLI tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from gpucost.cli.app import app
from gpucost.cli.output import run_guarded


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def gpucost(
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    columns: int = 100,
) -> Outcome:
    """`gpucost ARGS...` with `run_guarded` included, in CliRunner's isolation.

    `CliRunner.invoke` alone would catch a GpucostError as a crash (exit 1); users
    meet it through `run_guarded`, so that is what is tested. `env` adds to the
    environment for this one run.
    """
    monkeypatch.setattr(sys, "argv", ["gpucost", *args])
    isolated_env = {"COLUMNS": str(columns), **(env or {})}
    with CliRunner().isolation(input=stdin, env=isolated_env) as (stdout, stderr, _):
        try:
            code = run_guarded(app)
        except SystemExit as exit_:  # click's standalone mode always exits
            code = int(exit_.code or 0)
        return Outcome(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def one_error_line(outcome: Outcome) -> str:
    """The single `error: ...` line a failed command printed; no traceback anywhere."""
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in outcome.stderr + outcome.stdout
    return lines[0]
