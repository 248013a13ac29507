"""One window's cost: hand-worked cases, then conservation of cost and tokens."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.cost import (
    TokenTotals,
    WindowCost,
    allocated_cost_usd,
    allocated_energy_j,
    cost_of_window,
    window_index,
    window_start,
    window_start_ms,
)
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.windows import WindowSchedule

pytestmark = pytest.mark.unit


def sample(
    t: float,
    energy_j: float | None = None,
    power_w: float | None = None,
    util: float | None = None,
) -> GpuSample:
    return GpuSample(
        t=t, gpu_index=0, source="nvml", energy_j=energy_j, power_w=power_w, gpu_util_pct=util
    )


# Counter rises 150 J/s; power and utilisation readings inside [10, 20): 3 samples.
SAMPLES = [
    sample(5, 0, 100, 0),
    sample(10, 750, 120, 20),
    sample(15, 1500, 150, 40),
    sample(19, 2100, 180, 60),
    sample(25, 3000, 200, 80),
]


TWO_REQUESTS = TokenTotals(2, 300, 100)


def window(
    tokens: TokenTotals = TWO_REQUESTS,
    samples: list[GpuSample] = SAMPLES,
    electricity: float | None = None,
) -> WindowCost:
    return cost_of_window(
        "0",
        10,
        window_s=10,
        samples=samples,
        tokens=tokens,
        price_per_hour_usd=3.6,
        electricity_usd_per_kwh=electricity,
    )


def test_window_start_is_the_floor_of_ts_to_the_window() -> None:
    assert window_start(1795729154.34, 10) == 1795729150
    assert window_start(20, 10) == 20
    assert window_start(19.999, 10) == 10
    assert window_start(-0.5, 10) == -10
    assert window_start_ms(0.3, 0.1) == 300
    assert window_start_ms(9.9, 3.3) == 9900
    assert window_start_ms(3.3 * 3, 3.3) == 6600  # 3.3 * 3 is 9.899999999999999
    with pytest.raises(ValueError, match="window_s"):
        window_index(1, 0)


def test_window_costs_its_share_of_the_hourly_price() -> None:
    w = window()
    assert (w.window_start, w.window_end, w.window_s) == (10, 20, 10)
    assert w.cost_usd == pytest.approx(3.6 * 10 / 3600)  # 0.01
    assert w.mean_gpu_util_pct == pytest.approx(40)
    assert w.busy_cost_usd == pytest.approx(0.01 * 0.40)
    assert w.mean_power_w == pytest.approx(150)
    assert w.sample_count == 3
    assert w.source == "nvml"


def test_window_energy_is_the_interpolated_counter_delta() -> None:
    w = window()
    assert w.energy_j == pytest.approx(1500)  # E(20) = 2250, E(10) = 750
    assert w.energy_basis == "counter"


def test_per_token_figures() -> None:
    w = window()
    assert (w.requests, w.prompt_tokens, w.completion_tokens, w.total_tokens) == (2, 300, 100, 400)
    assert w.cost_per_token == pytest.approx(0.01 / 400)
    assert w.cost_per_output_token == pytest.approx(0.01 / 100)
    assert w.joules_per_token == pytest.approx(1500 / 400)
    assert w.joules_per_output_token == pytest.approx(1500 / 100)


def test_zero_divisors_give_none_not_infinity() -> None:
    idle = window(TokenTotals())
    assert idle.cost_usd == pytest.approx(0.01)
    assert idle.cost_per_token is None
    assert idle.cost_per_output_token is None
    assert idle.joules_per_token is None
    prompt_only = window(TokenTotals(1, 50, 0))
    assert prompt_only.cost_per_token == pytest.approx(0.01 / 50)
    assert prompt_only.cost_per_output_token is None
    assert prompt_only.joules_per_output_token is None


def test_unknown_energy_and_utilisation_are_none() -> None:
    w = window(samples=[sample(12), sample(14)])
    assert w.energy_j is None
    assert w.energy_basis is None
    assert w.joules_per_token is None
    assert w.busy_cost_usd is None
    assert w.mean_power_w is None
    empty = window(samples=[])
    assert (empty.sample_count, empty.source, empty.mean_gpu_util_pct) == (0, None, None)
    assert empty.cost_usd == pytest.approx(0.01)


def test_power_trapezoid_when_no_counter() -> None:
    w = window(samples=[sample(10, power_w=100), sample(20, power_w=300)])
    assert w.energy_j == pytest.approx(2000)
    assert w.energy_basis == "power"


def test_electricity_price_adds_energy_cost() -> None:
    assert window().energy_cost_usd is None
    w = window(electricity=0.2)
    assert w.energy_cost_usd == pytest.approx(1500 / 3.6e6 * 0.2)
    assert w.cost_usd == pytest.approx(0.01)  # the hourly price stays separate


def test_to_dict_is_plain_data() -> None:
    d = window().to_dict()
    assert d["cost_usd"] == pytest.approx(0.01)
    assert d["total_tokens"] == 400
    assert set(d) >= {"gpu", "window_start", "energy_j", "cost_per_token", "source"}


def test_bad_rates_are_bugs() -> None:
    with pytest.raises(ValueError, match="price"):
        cost_of_window("0", 0, window_s=10, samples=[], tokens=TokenTotals(), price_per_hour_usd=-1)
    with pytest.raises(ValueError, match="window_s"):
        cost_of_window("0", 0, window_s=0, samples=[], tokens=TokenTotals(), price_per_hour_usd=1)


def test_allocation_by_tokens() -> None:
    w = window()
    assert allocated_cost_usd(w, 100) == pytest.approx(0.01 / 4)
    assert allocated_energy_j(w, 300) == pytest.approx(1500 * 3 / 4)
    assert allocated_cost_usd(window(TokenTotals()), 0) == 0
    with pytest.raises(ValueError, match="share"):
        allocated_cost_usd(w, 401)


def test_token_totals_add_up() -> None:
    totals = TokenTotals().add_request(10, 5).add_request(1, 2)
    assert totals == TokenTotals(2, 11, 7)
    assert totals.total_tokens == 18
    assert totals + totals == TokenTotals(4, 22, 14)


# --- laws -------------------------------------------------------------------------------

requests = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=40)


@given(requests, st.floats(0, 1000), st.floats(0.001, 3600))
def test_shares_sum_to_the_window_cost(
    reqs: list[tuple[int, int]], price: float, window_s: float
) -> None:
    tokens = TokenTotals()
    for prompt, completion in reqs:
        tokens = tokens.add_request(prompt, completion)
    w = cost_of_window(
        "0", 0, window_s=window_s, samples=[], tokens=tokens, price_per_hour_usd=price
    )
    shares = [allocated_cost_usd(w, p + c) for p, c in reqs]
    assert sum(p + c for p, c in reqs) == w.total_tokens
    assert w.cost_usd == pytest.approx(price * window_s / 3600)
    if w.total_tokens > 0:
        assert math.fsum(shares) == pytest.approx(w.cost_usd, rel=1e-9, abs=1e-15)
    else:
        assert shares == [0.0] * len(reqs)


@given(
    st.integers(1, 50),
    st.integers(1, 3_600_000),
    st.floats(0.01, 100),
    st.floats(1e9, 2e9),
)
def test_a_sampled_gpu_pays_price_times_time_for_any_window(
    n: int, width_ms: int, price: float, origin: float
) -> None:
    # The schedule decides which windows a sampled GPU is charged for; priced one by
    # one they must add to the price of the time they cover, once, for any width.
    window_s = width_ms / 1000
    schedule = WindowSchedule(window_s=window_s, grace_s=0)
    schedule.mark_sampled(("n", "0"), origin)
    first = window_start_ms(origin, window_s)
    keys = schedule.due((first + n * width_ms) / 1000)
    costs = [
        cost_of_window(
            "0",
            key[2] / 1000,
            window_s=window_s,
            samples=[],
            tokens=TokenTotals(),
            price_per_hour_usd=price,
        ).cost_usd
        for key in keys
    ]
    assert len(keys) == n
    assert math.fsum(costs) == pytest.approx(price * n * width_ms / 1000 / 3600)


@given(st.floats(-1e10, 1e10), st.integers(1, 3_600_000))
def test_every_instant_lies_in_its_window(ts: float, width_ms: int) -> None:
    start = window_start_ms(ts, width_ms / 1000)
    assert start % width_ms == 0
    assert start <= ts * 1000 < start + width_ms + 1e-3 * abs(ts)
