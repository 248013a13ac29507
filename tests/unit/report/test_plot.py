"""The picture: built from a replay or from stored windows, written as a real PNG;
matplotlib stays out of every import path but `--png`'s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpucost.errors import InputError
from gpucost.report.plot import render_png, timeline_from_replay, timeline_from_windows
from gpucost.report.replay import replay_trace
from gpucost.runtime.trace import default_seed_path, load_trace
from support.png import assert_sensible_png
from support.report_docs import window

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def replayed() -> tuple[object, object]:
    trace = load_trace(default_seed_path())
    return trace, replay_trace(trace, price_per_hour_usd=3.5, window_s=10)


def test_replay_timeline_marks_the_batch_phases_with_the_tables_costs(
    replayed: tuple[object, object],
) -> None:
    trace, result = replayed
    timeline = timeline_from_replay(trace, result, "trace.json")  # type: ignore[arg-type]
    costs = {p.label: p.usd_per_million_tokens for p in timeline.phases}
    decode = [costs[f"decode_bs{n}"] for n in (1, 8, 32, 128)]
    assert all(c is not None for c in decode)
    # The point of the picture: each batch size is cheaper per token than the last.
    assert decode == sorted(decode, reverse=True)
    assert decode[0] / decode[-1] > 50  # type: ignore[operator]
    assert costs["decode_bs1"] == result.by_phase["decode_bs1"].usd_per_million_tokens  # type: ignore[attr-defined]
    assert "NVIDIA H200" in timeline.title
    assert "$3.50 per GPU-hour" in timeline.title
    assert sum(len(p) for p in timeline.windows.values()) == 18
    assert timeline.power_samples["0"]


def test_replay_png_is_written(replayed: tuple[object, object], tmp_path: Path) -> None:
    trace, result = replayed
    out = render_png(timeline_from_replay(trace, result), tmp_path / "replay.png")  # type: ignore[arg-type]
    assert_sensible_png(out)


def test_windows_png_with_a_what_if_price_and_two_gpus(tmp_path: Path) -> None:
    windows = [window(g, 1000 + 10 * k, prompt=100 * (k + 1)) for k in range(6) for g in "01"]
    windows[3]["mean_power_w"] = None  # a window without a reading leaves a gap
    timeline = timeline_from_windows(windows, price_per_hour_usd=7.0, where="last 1h")
    assert "what-if $7.00 per GPU-hour" in timeline.title
    assert "GPU node-a/0, GPU node-a/1" in timeline.title
    assert_sensible_png(render_png(timeline, tmp_path / "live.png"))


def test_windows_without_tokens_still_draw(tmp_path: Path) -> None:
    idle = [window(start=1000 + 10 * k, prompt=0, completion=0, requests=0) for k in range(3)]
    timeline = timeline_from_windows(idle, stored_prices=[3.6])
    assert timeline.title.startswith("no tokens")
    assert_sensible_png(render_png(timeline, tmp_path / "idle.png"))


def test_no_windows_is_one_line() -> None:
    with pytest.raises(InputError, match="no windows"):
        timeline_from_windows([])


def test_unwritable_path_is_one_line(replayed: tuple[object, object], tmp_path: Path) -> None:
    trace, result = replayed
    with pytest.raises(InputError, match="cannot write"):
        render_png(timeline_from_replay(trace, result), tmp_path / "missing" / "x.png")  # type: ignore[arg-type]


def test_the_cli_does_not_import_matplotlib_or_pymongo() -> None:
    # `--help` and the commands that do not draw must not pay for them.
    code = (
        "import sys, gpucost.cli.app, gpucost.report.summary; "
        "bad = [m for m in ('matplotlib', 'pymongo', 'paramiko') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
