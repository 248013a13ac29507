"""`gpucost replay --png`: the recording drawn, stdout untouched by the picture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpucost.cli.app import app
from gpucost.cli.output import run_guarded
from gpucost.runtime.trace import default_seed_path
from support.png import assert_sensible_png

pytestmark = pytest.mark.unit

SEED = str(default_seed_path())


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["gpucost", *args])
    with CliRunner().isolation(env={"COLUMNS": "100"}) as (out, err, _):
        try:
            code = run_guarded(app)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        return code, out.getvalue().decode(), err.getvalue().decode()


def test_replay_png(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    code, out, err = run(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--png",
        str(png),
    )
    assert code == 0, err
    assert f"wrote {png}" in out.replace("\n", "")
    assert_sensible_png(png)


def test_replay_png_with_json_keeps_stdout_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png = tmp_path / "out.png"
    code, out, err = run(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--json",
        "--png",
        str(png),
    )
    assert code == 0, err
    assert json.loads(out)["windows"] == 18
    assert "wrote" in err
    assert_sensible_png(png)


def test_replay_png_to_a_missing_directory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png = tmp_path / "no" / "such" / "out.png"
    code, out, err = run(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--png",
        str(png),
    )
    assert code == 2
    assert out == ""  # refused before the replay ran
    assert err.strip().startswith("error: cannot write")
    assert len(err.strip().splitlines()) == 1
