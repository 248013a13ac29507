"""Replaying recorded traces: the real H200 recording, then laws over made-up traces."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.report.replay import ReplayResult, replay_trace
from gpucost.runtime.cost import window_index
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.trace import RecordedEvent, Trace, TraceMeta, default_seed_path, load_trace

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def h200() -> ReplayResult:
    return replay_trace(load_trace(default_seed_path()), price_per_hour_usd=3.5, window_s=10)


def test_h200_recording_figures(h200: ReplayResult) -> None:
    d = h200.to_dict()
    assert d["windows"] == 18  # 1795729150 .. 1795729320, the windows of first and last sample
    assert d["total_tokens"] == 424704
    assert d["completion_tokens"] == 212352
    assert d["total_cost_usd"] == pytest.approx(0.175, rel=1e-12)
    # The counter's delta over the whole recording, held flat past its ends.
    assert d["energy_j"] == pytest.approx(22979, rel=0.01)
    assert d["cost_per_token"] == pytest.approx(0.175 / 424704)
    assert h200.total.energy_j is not None
    assert d["joules_per_token"] == pytest.approx(h200.total.energy_j / 424704)
    assert d["unattributed_events"] == 0
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_cost_per_token_falls_with_batch_size(h200: ReplayResult) -> None:
    decode = [h200.by_phase[f"decode_bs{bs}"] for bs in (1, 8, 32, 128)]
    per_million = [p.usd_per_million_tokens or math.inf for p in decode]
    assert per_million == sorted(per_million, reverse=True)
    assert len(set(per_million)) == 4
    assert per_million[-1] < 0.1 < 10 < per_million[0]  # $0.09 and $10.4 per 1M tokens
    joules = [p.joules_per_token or math.inf for p in decode]
    assert joules == sorted(joules, reverse=True)


def test_breakdowns_add_up_to_the_totals(h200: ReplayResult) -> None:
    phases = h200.by_phase.values()
    assert sum(p.windows for p in phases) == h200.total.windows
    assert sum(p.total_tokens for p in phases) == h200.total.total_tokens
    assert math.fsum(p.cost_usd for p in phases) == pytest.approx(h200.total.cost_usd)
    assert math.fsum(p.energy_j or 0 for p in phases) == pytest.approx(h200.total.energy_j)
    (model,) = h200.by_model.values()
    assert model.prompt_tokens + model.completion_tokens == 424704
    assert model.cost_usd + h200.unallocated_cost_usd == pytest.approx(0.175)


def test_electricity_price(h200: ReplayResult) -> None:
    trace = load_trace(default_seed_path())
    priced = replay_trace(trace, price_per_hour_usd=3.5, electricity_usd_per_kwh=0.3)
    assert h200.total.energy_cost_usd is None
    assert h200.total.energy_j is not None
    assert priced.total.energy_cost_usd == pytest.approx(h200.total.energy_j / 3.6e6 * 0.3)


def test_bad_rates_are_refused() -> None:
    empty = Trace(TraceMeta(None, None, None), [], [])
    with pytest.raises(ValueError, match="window_s"):
        replay_trace(empty, price_per_hour_usd=1, window_s=0)
    with pytest.raises(ValueError, match="price"):
        replay_trace(empty, price_per_hour_usd=-1)
    assert replay_trace(empty, price_per_hour_usd=1).to_dict()["windows"] == 0


# --- laws -------------------------------------------------------------------------------


def _sample(t: float, gpu: int, energy: float) -> GpuSample:
    return GpuSample(t=t, gpu_index=gpu, source="seed", energy_j=energy, power_w=100.0)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    samples = [
        _sample(t, gpu, energy)
        for t, gpu, energy in draw(
            st.lists(
                st.tuples(st.floats(1e9, 1e9 + 300), st.integers(0, 2), st.floats(0, 1e6)),
                max_size=40,
            )
        )
    ]
    events = [
        RecordedEvent(f"e{i}", ts, gpu, prompt, completion, draw(st.sampled_from(["a", "b"])))
        for i, (ts, gpu, prompt, completion) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.floats(1e9 - 20, 1e9 + 320),
                        st.integers(0, 2),
                        st.integers(0, 5000),
                        st.integers(0, 5000),
                    ),
                    max_size=30,
                )
            )
        )
    ]
    return Trace(TraceMeta(None, None, None), samples, events)


@given(traces(), st.sampled_from([1.0, 7.5, 10.0, 60.0]), st.floats(0, 50))
def test_tokens_and_cost_are_conserved(trace: Trace, window_s: float, price: float) -> None:
    result = replay_trace(trace, price_per_hour_usd=price, window_s=window_s)
    counted = sum(w.cost.total_tokens for w in result.windows)
    missed = sum(e.total_tokens for e in result.unattributed_events)
    assert counted + missed == sum(e.total_tokens for e in trace.events)

    expected_windows = 0
    for gpu in {s.gpu_index for s in trace.samples}:
        times = [s.t for s in trace.samples if s.gpu_index == gpu]
        expected_windows += window_index(max(times), window_s) - window_index(min(times), window_s)
        expected_windows += 1
    assert len(result.windows) == expected_windows
    assert result.total.cost_usd == pytest.approx(expected_windows * price * window_s / 3600)

    allocated = math.fsum(m.cost_usd for m in result.by_model.values())
    assert allocated + result.unallocated_cost_usd == pytest.approx(
        result.total.cost_usd, abs=1e-12
    )
    assert result.total.energy_j is None or result.total.energy_j >= 0
