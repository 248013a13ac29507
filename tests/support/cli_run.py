"""Run the real CLI as `main()` does, `run_guarded` included."""

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


def gpucost(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str | None = None) -> Outcome:
    monkeypatch.setattr(sys, "argv", ["gpucost", *args])
    with CliRunner().isolation(input=stdin, env={"COLUMNS": "200"}) as (stdout, stderr, _):
        try:
            code = run_guarded(app)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        return Outcome(code, stdout.getvalue().decode(), stderr.getvalue().decode())
