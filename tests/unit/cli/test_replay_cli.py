"""`gpucost replay` through the real app: JSON on stdout, bad input as one line and exit 2."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpucost.cli.app import app
from gpucost.cli.output import run_guarded
from gpucost.errors import ExitStatus
from gpucost.runtime.trace import default_seed_path

pytestmark = pytest.mark.unit

SEED = str(default_seed_path())


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def gpucost(monkeypatch: pytest.MonkeyPatch, *args: str) -> Outcome:
    """Run the CLI the way `main()` does, `run_guarded` included, in CliRunner's isolation.

    `CliRunner.invoke` alone would catch a GpucostError as a crash (exit 1); users
    meet it through `run_guarded`, so that is what is tested.
    """
    monkeypatch.setattr(sys, "argv", ["gpucost", *args])
    with CliRunner().isolation(env={"COLUMNS": "100"}) as (stdout, stderr, _):
        try:
            code = run_guarded(app)
        except SystemExit as exit_:  # click's standalone mode always exits
            code = int(exit_.code or 0)
        return Outcome(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def test_json_is_all_that_stdout_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    out = gpucost(
        monkeypatch, "replay", SEED, "--price-per-hour", "3.5", "--window", "10", "--json"
    )
    assert out.code == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["windows"] == 18
    assert d["total_tokens"] == 424704
    assert d["total_cost_usd"] == pytest.approx(0.175)
    assert d["energy_j"] == pytest.approx(22979, rel=0.01)
    assert d["price_per_hour_usd"] == 3.5
    assert d["window_s"] == 10
    assert len(d["per_window"]) == 18
    assert {"by_phase", "by_model", "cost_per_token", "joules_per_token"} <= set(d)


def test_plain_invoke_renders_a_summary() -> None:
    result = CliRunner().invoke(
        app,
        ["replay", SEED, "--price-per-hour", "3.5", "--electricity-usd-per-kwh", "0.2"],
        env={"COLUMNS": "100"},
    )
    assert result.exit_code == 0, result.output
    assert "18 windows" in result.stdout
    assert "424,704" in result.stdout
    assert "decode_bs128" in result.stdout
    assert "electricity $" in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["missing.json", "--price-per-hour", "3"], "trace file not found"),
        ([SEED, "--price-per-hour", "-1"], "--price-per-hour must be"),
        ([SEED, "--price-per-hour", "3", "--window", "0"], "--window must be"),
        ([SEED, "--price-per-hour", "3", "--window", "-5"], "--window must be"),
        ([SEED, "--price-per-hour", "3", "--electricity-usd-per-kwh", "-1"], "--electricity"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    out = gpucost(monkeypatch, "replay", *args)
    assert out.code == ExitStatus.USAGE
    assert out.stdout == ""
    assert says in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_a_file_that_is_not_a_trace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "trace.json"
    bad.write_text('{"meta": {}, "samples": [{"t": "noon"}]}')
    out = gpucost(monkeypatch, "replay", str(bad), "--price-per-hour", "3", "--json")
    assert out.code == ExitStatus.USAGE
    assert "$.samples[0].t" in out.stderr
    assert out.stdout == ""


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "Example: gpucost replay trace.json --price-per-hour 3.5" in result.stdout
