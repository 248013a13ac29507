"""Energy between two instants: hand-worked cases, then the laws it must keep."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.energy import CumulativeEnergy, energy_between
from gpucost.runtime.samples import GpuSample

pytestmark = pytest.mark.unit


def sample(t: float, energy_j: float | None = None, power_w: float | None = None) -> GpuSample:
    return GpuSample(t=t, gpu_index=0, source="seed", energy_j=energy_j, power_w=power_w)


COUNTER = [sample(10, 1000), sample(20, 1100), sample(30, 1300)]


def test_counter_delta_over_whole_readings() -> None:
    assert energy_between(COUNTER, 10, 30) == pytest.approx(300)


def test_counter_interpolated_inside_a_segment() -> None:
    # 100 J over [10, 20] and 200 J over [20, 30]: [15, 25] holds half of each.
    assert energy_between(COUNTER, 15, 25) == pytest.approx(50 + 100)


def test_counter_held_flat_outside_the_sampled_span() -> None:
    assert energy_between(COUNTER, 0, 10) == 0
    assert energy_between(COUNTER, 30, 99) == 0
    assert energy_between(COUNTER, 5, 15) == pytest.approx(50)
    assert energy_between(COUNTER, 0, 100) == pytest.approx(300)


def test_reset_adds_the_power_trapezoid_not_a_negative_step() -> None:
    samples = [
        sample(0, 5000, power_w=100),
        sample(1, 5100, power_w=100),
        sample(2, 10, power_w=300),  # driver reloaded: counter back near zero
        sample(3, 310, power_w=300),
    ]
    # 100 J, then the reset segment's trapezoid (100 + 300) / 2 * 1 = 200 J, then 300 J.
    assert energy_between(samples, 0, 3) == pytest.approx(600)
    assert energy_between(samples, 1, 2) == pytest.approx(200)


def test_reset_without_power_contributes_nothing() -> None:
    samples = [sample(0, 5000), sample(1, 5100), sample(2, 10), sample(3, 310)]
    assert energy_between(samples, 0, 3) == pytest.approx(400)
    assert energy_between(samples, 1, 2) == 0


def test_counter_used_where_present_and_interpolated_across_gaps() -> None:
    samples = [sample(0, 0, power_w=999), sample(5, None, power_w=999), sample(10, 100)]
    assert energy_between(samples, 0, 5) == pytest.approx(50)
    assert CumulativeEnergy(samples).basis == "counter"


def test_trapezoid_of_power_without_counter() -> None:
    samples = [sample(0, power_w=100), sample(2, power_w=200), sample(4, power_w=200)]
    assert energy_between(samples, 0, 4) == pytest.approx(300 + 400)
    # P(1) = 150: trapezoid (100 + 150) / 2 * 1.
    assert energy_between(samples, 0, 1) == pytest.approx(125)
    assert CumulativeEnergy(samples).basis == "power"


def test_trapezoid_covers_only_the_sampled_span() -> None:
    samples = [sample(10, power_w=100), sample(20, power_w=100)]
    assert energy_between(samples, 0, 15) == pytest.approx(500)
    assert energy_between(samples, 0, 100) == pytest.approx(1000)
    assert energy_between(samples, 20, 30) == 0


def test_one_counter_reading_falls_back_to_power() -> None:
    samples = [sample(0, power_w=100), sample(1, 42, power_w=100), sample(2, power_w=100)]
    assert energy_between(samples, 0, 2) == pytest.approx(200)


def test_unknown_without_energy_or_power() -> None:
    assert energy_between([], 0, 10) is None
    assert energy_between([sample(0), sample(1)], 0, 10) is None
    assert energy_between([sample(0, power_w=100)], 0, 10) is None


def test_broken_readings_are_ignored() -> None:
    samples = [sample(0, 0), sample(1, math.nan), sample(2, -5), sample(3, 30)]
    assert energy_between(samples, 0, 3) == pytest.approx(30)


def test_unsorted_samples_are_sorted() -> None:
    assert energy_between(list(reversed(COUNTER)), 10, 30) == pytest.approx(300)


def test_backwards_interval_is_a_bug() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        energy_between(COUNTER, 20, 10)


# --- laws -------------------------------------------------------------------------------

reading = st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))


@st.composite
def gpu_samples(draw: st.DrawFn) -> list[GpuSample]:
    # Counter readings are arbitrary, so backwards steps (resets) are common.
    times = sorted(draw(st.lists(st.floats(0, 1000), max_size=30)))
    return [sample(t, draw(reading), draw(reading)) for t in times]


instants = st.lists(st.floats(-100, 1100), min_size=2, max_size=6).map(sorted)


@given(gpu_samples(), instants)
def test_energy_of_adjacent_intervals_adds_up_to_their_union(
    samples: list[GpuSample], cuts: list[float]
) -> None:
    energy = CumulativeEnergy(samples)
    union = energy.between(cuts[0], cuts[-1])
    parts = [energy.between(a, b) for a, b in itertools.pairwise(cuts)]
    if union is None:
        assert all(p is None for p in parts)
    else:
        assert math.fsum(p for p in parts if p is not None) == pytest.approx(
            union, rel=1e-9, abs=1e-6
        )


@given(gpu_samples(), st.floats(-100, 1100), st.floats(0, 1200))
def test_energy_is_never_negative(samples: list[GpuSample], t0: float, length: float) -> None:
    energy = energy_between(samples, t0, t0 + length)
    assert energy is None or energy >= 0


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 1e3)), min_size=2, max_size=30))
def test_without_resets_the_whole_span_is_the_counter_delta(
    steps: list[tuple[float, float]],
) -> None:
    times = sorted(t for t, _ in steps)
    readings = [1e6 + math.fsum(d for _, d in steps[: i + 1]) for i in range(len(steps))]
    samples = [sample(t, e) for t, e in zip(times, readings, strict=True)]
    assert energy_between(samples, -1, 1001) == pytest.approx(readings[-1] - readings[0])
