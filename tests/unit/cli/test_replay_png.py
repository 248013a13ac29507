"""`gpucost replay --png`: the recording drawn, stdout untouched by the picture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost.runtime.trace import default_seed_path
from support.cli import gpucost
from support.png import assert_sensible_png

pytestmark = pytest.mark.unit

SEED = str(default_seed_path())


def test_replay_png(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    out = gpucost(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--png",
        str(png),
    )
    assert out.code == 0, out.stderr
    assert f"wrote {png}" in out.stdout.replace("\n", "")
    assert_sensible_png(png)


def test_replay_png_with_json_keeps_stdout_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png = tmp_path / "out.png"
    out = gpucost(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--json",
        "--png",
        str(png),
    )
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["windows"] == 18
    assert "wrote" in out.stderr
    assert_sensible_png(png)


def test_replay_png_to_a_missing_directory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png = tmp_path / "no" / "such" / "out.png"
    out = gpucost(
        monkeypatch,
        "replay",
        SEED,
        "--price-per-hour",
        "3.5",
        "--png",
        str(png),
    )
    assert out.code == 2
    assert out.stdout == ""  # refused before the replay ran
    assert out.stderr.strip().startswith("error: cannot write")
    assert len(out.stderr.strip().splitlines()) == 1
