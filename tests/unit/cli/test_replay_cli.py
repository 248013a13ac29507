"""`gpucost replay` through the real app: JSON on stdout, bad input as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost.errors import ExitStatus
from gpucost.runtime.trace import default_seed_path
from support.cli import gpucost

pytestmark = pytest.mark.unit

SEED = str(default_seed_path())


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


def test_plain_invoke_renders_a_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    out = gpucost(
        monkeypatch, "replay", SEED, "--price-per-hour", "3.5", "--electricity-usd-per-kwh", "0.2"
    )
    assert out.code == 0, out.stderr
    assert "18 windows" in out.stdout
    assert "424,704" in out.stdout
    assert "decode_bs128" in out.stdout
    assert "electricity $" in out.stdout


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


def test_help_has_an_example(monkeypatch: pytest.MonkeyPatch) -> None:
    out = gpucost(monkeypatch, "replay", "--help")
    assert out.code == 0
    assert "Example: gpucost replay trace.json --price-per-hour 3.5" in out.stdout
