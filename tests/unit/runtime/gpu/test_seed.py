from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.runtime.gpu.base import GpuSource, GpuSourceUnavailable
from gpucost.runtime.gpu.seed import SeedSource
from gpucost.runtime.trace import default_seed_path

pytestmark = pytest.mark.unit

START = 2_000_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def trace() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(default_seed_path().read_text())
    return doc


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seed(clock: Clock) -> SeedSource:
    return SeedSource(clock=clock)


def read_at(seed: SeedSource, clock: Clock, t: float) -> Any:
    clock.now = t
    (sample,) = seed.read()
    return sample


def test_first_read_is_the_first_recorded_sample_now(
    seed: SeedSource, clock: Clock, trace: dict[str, Any]
) -> None:
    first = trace["samples"][0]
    sample = read_at(seed, clock, START)
    assert sample.t == START
    assert sample.source == "seed"
    assert sample.gpu_index == 0
    assert sample.gpu_uuid == trace["meta"]["gpu"]["uuid"]
    assert sample.gpu_name == "NVIDIA H200"
    assert sample.mig_mode is False
    assert sample.phase == first["phase"]
    assert sample.power_w == pytest.approx(first["power_mw"] / 1000)
    assert sample.energy_j == pytest.approx(first["energy_mj"] / 1000)
    assert sample.mem_used_bytes == first["mem_used_bytes"]
    assert isinstance(seed, GpuSource)


@pytest.mark.parametrize("i", [1, 400, 900, 1703])
@pytest.mark.parametrize("loop", [0, 1, 3])
def test_sample_i_is_served_shifted_by_loop(
    seed: SeedSource, clock: Clock, trace: dict[str, Any], i: int, loop: int
) -> None:
    samples = trace["samples"]
    t0 = samples[0]["t"]
    # A hair past the scheduled instant, so rounding cannot fall back to sample i - 1.
    at = START + (samples[i]["t"] - t0) + loop * seed.period_s + 1e-6
    sample = read_at(seed, clock, at)
    assert sample.phase == samples[i]["phase"]
    assert sample.gpu_util_pct == samples[i]["gpu_util_pct"]
    assert sample.power_w == pytest.approx(samples[i]["power_mw"] / 1000, abs=0.01)
    expected_j = samples[i]["energy_mj"] / 1000 + loop * seed.energy_per_loop_j
    assert sample.energy_j == pytest.approx(expected_j, abs=0.01)


def test_period_and_energy_per_loop(seed: SeedSource, trace: dict[str, Any]) -> None:
    samples = trace["samples"]
    span = samples[-1]["t"] - samples[0]["t"]
    assert seed.step_s == pytest.approx(0.1, abs=0.001)  # recorded at 10 Hz
    assert seed.period_s == pytest.approx(span + seed.step_s)
    recorded_j = (samples[-1]["energy_mj"] - samples[0]["energy_mj"]) / 1000
    seam_j = samples[-1]["power_mw"] / 1000 * seed.step_s
    assert seed.energy_per_loop_j == pytest.approx(recorded_j + seam_j)


def test_energy_is_continuous_across_the_seam(seed: SeedSource, clock: Clock) -> None:
    end = START + seed.period_s
    before = read_at(seed, clock, end - 1e-3).energy_j
    after = read_at(seed, clock, end + 1e-3).energy_j
    assert before < after < before + 1.0  # about 2 ms at a few hundred watts


def test_between_samples_energy_is_interpolated(
    seed: SeedSource, clock: Clock, trace: dict[str, Any]
) -> None:
    a, b = trace["samples"][10], trace["samples"][11]
    mid = START + ((a["t"] + b["t"]) / 2 - trace["samples"][0]["t"])
    sample = read_at(seed, clock, mid)
    assert sample.energy_j == pytest.approx((a["energy_mj"] + b["energy_mj"]) / 2000, abs=1e-3)
    assert sample.phase == a["phase"]


def test_clock_before_start_serves_the_first_sample(seed: SeedSource, clock: Clock) -> None:
    first = read_at(seed, clock, START)
    early = read_at(seed, clock, START - 50)
    assert early.energy_j == first.energy_j
    assert early.t == START - 50


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0, max_value=40.0), min_size=2, max_size=40))
def test_energy_never_runs_backwards_over_loops(steps: list[float]) -> None:
    clock = Clock()
    seed = SeedSource(clock=clock)
    last = -1.0
    for step in steps:
        clock.now += step
        energy = seed.read()[0].energy_j
        assert energy is not None
        assert energy >= last
        last = energy


def test_sweep_over_three_loops_is_monotonic(seed: SeedSource, clock: Clock) -> None:
    energies = []
    t = START
    while t < START + 3 * seed.period_s:
        energies.append(read_at(seed, clock, t).energy_j)
        t += 0.37
    assert all(a <= b for a, b in itertools.pairwise(energies))


def write_trace(path: Path, samples: list[dict[str, Any]]) -> Path:
    meta = {"gpu": {"name": "Test GPU", "uuid": "GPU-test", "mig_mode": [1, 0]}}
    path.write_text(json.dumps({"meta": meta, "samples": samples, "events": []}))
    return path


def test_a_field_recorded_as_an_error_is_none(tmp_path: Path, clock: Clock) -> None:
    samples = [
        {"t": 10.0 + i, "power_mw": 100_000, "energy_mj_error": "NVMLError_NotSupported"}
        for i in range(3)
    ]
    seed = SeedSource(write_trace(tmp_path / "t.json", samples), clock=clock)
    (sample,) = seed.read()
    assert sample.energy_j is None
    assert sample.power_w == 100.0
    assert sample.gpu_uuid == "GPU-test"
    assert sample.mig_mode is True
    gpus: Any = seed.describe()["gpus"]
    assert "energy_j" in gpus[0]["unsupported"]
    assert "power_w" not in gpus[0]["unsupported"]


def test_a_one_sample_trace_still_loops(tmp_path: Path, clock: Clock) -> None:
    path = write_trace(tmp_path / "t.json", [{"t": 5.0, "power_mw": 50_000, "energy_mj": 1000}])
    seed = SeedSource(path, clock=clock)
    first = read_at(seed, clock, START).energy_j
    later = read_at(seed, clock, START + 10 * seed.period_s).energy_j
    assert later == pytest.approx(first + 10 * 50.0 * seed.period_s)


def test_missing_trace_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(GpuSourceUnavailable, match="seed trace file not found"):
        SeedSource(tmp_path / "nope.json")


def test_empty_trace_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(GpuSourceUnavailable, match="no samples"):
        SeedSource(write_trace(tmp_path / "t.json", []))


def test_describe_names_the_trace(seed: SeedSource) -> None:
    info = seed.describe()
    assert info["source"] == "seed"
    assert info["samples"] == 1704
    assert info["gpu_count"] == 1
    assert Path(str(info["trace"])) == default_seed_path()
