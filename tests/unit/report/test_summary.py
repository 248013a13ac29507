"""The report's sums, on hand-made window and usage documents: per GPU, per model,
what-if prices, empty input, nothing NaN."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.report.summary import ModelWindow, Row, by_gpu, number, stored_window_cost, summarize
from support.report_docs import PRICE, window

pytestmark = pytest.mark.unit


def finite_json(data: Any) -> str:
    return json.dumps(data, allow_nan=False)  # raises on NaN or infinity


# ---- per GPU -------------------------------------------------------------------------


def test_one_gpu_by_hand() -> None:
    windows = [window(start=1000), window(start=1010, util=100, power=300, energy=3000)]
    (row,) = by_gpu(windows)
    assert row.key == "node-a/0"
    assert row.windows == 2
    assert row.gpu_hours == pytest.approx(20 / 3600)
    assert row.total_tokens == 2000
    assert row.completion_tokens == 800
    assert row.requests == 4
    assert row.cost_usd == pytest.approx(0.02)
    assert row.busy_cost_usd == pytest.approx(0.005 + 0.01)
    assert row.allocated_cost_usd == pytest.approx(0.02)
    assert row.energy_j == pytest.approx(5000)
    assert row.mean_power_w == pytest.approx(250)
    assert row.mean_gpu_util_pct == pytest.approx(75)
    assert row.usd_per_million_tokens == pytest.approx(0.02 / 2000 * 1e6)  # $10 per 1M
    assert row.usd_per_million_output_tokens == pytest.approx(0.02 / 800 * 1e6)
    assert row.joules_per_token == pytest.approx(2.5)


def test_idle_windows_cost_but_are_not_allocated() -> None:
    idle = window(start=1010, prompt=0, completion=0, requests=0, util=0, energy=800)
    (row,) = by_gpu([window(start=1000), idle])
    assert row.cost_usd == pytest.approx(0.02)
    assert row.allocated_cost_usd == pytest.approx(0.01)
    assert row.unallocated_cost_usd == pytest.approx(0.01)
    # The idle window is paid for, so it raises the cost of every token.
    assert row.usd_per_million_tokens == pytest.approx(0.02 / 1000 * 1e6)


def test_gpus_are_separate_rows_and_the_total_is_their_sum() -> None:
    windows = [window("1", 1000), window("0", 1000), window("0", 1010, prompt=0, completion=10)]
    report = summarize(windows, by="gpu")
    assert [r.key for r in report.rows] == ["node-a/0", "node-a/1"]
    assert report.total.key == "all"
    assert report.total.cost_usd == pytest.approx(sum(r.cost_usd for r in report.rows))
    assert report.total.total_tokens == sum(r.total_tokens for r in report.rows) == 2010
    assert report.total.gpu_hours == pytest.approx(30 / 3600)
    assert report.gpus == ["node-a/0", "node-a/1"]
    assert report.stored_prices_per_hour_usd == [PRICE]


def test_energy_unknown_in_one_window_is_unknown_in_the_sum() -> None:
    (row,) = by_gpu([window(start=1000), window(start=1010, energy=None, power=None)])
    assert row.energy_j is None
    assert row.joules_per_token is None
    assert row.mean_power_w == pytest.approx(200)  # the mean of what was measured


def test_nan_and_missing_readings_are_unknown_not_nan() -> None:
    odd = window(util=None, power=None, energy=None)
    odd["mean_power_w"] = float("nan")
    odd.pop("energy_j")
    report = summarize([odd], by="gpu")
    row = report.rows[0]
    assert row.mean_power_w is None
    assert row.energy_j is None
    assert row.busy_cost_usd is None
    finite_json(report.to_dict())


# ---- what-if price -------------------------------------------------------------------


def test_what_if_price_recomputes_and_leaves_documents_alone() -> None:
    windows = [window(start=1000), window(start=1010, util=100)]
    before = json.dumps(windows, sort_keys=True)
    report = summarize(windows, by="gpu", price_per_hour_usd=7.2)
    assert json.dumps(windows, sort_keys=True) == before
    assert report.total.cost_usd == pytest.approx(0.04)  # twice the stored $3.6/h
    assert report.total.busy_cost_usd == pytest.approx(0.01 + 0.02)
    assert report.what_if_price_per_hour_usd == 7.2
    assert report.stored_prices_per_hour_usd == [PRICE]


def test_what_if_zero_price_is_free_not_unknown() -> None:
    report = summarize([window()], by="gpu", price_per_hour_usd=0.0)
    assert report.total.cost_usd == 0.0
    assert report.total.usd_per_million_tokens == 0.0


@given(
    price=st.floats(min_value=0, max_value=1000, allow_nan=False),
    stored=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
)
def test_what_if_cost_is_price_times_gpu_hours(price: float, stored: float) -> None:
    windows = [window(start=1000 + 10 * k, price=stored) for k in range(5)]
    row = summarize(windows, by="gpu", price_per_hour_usd=price).total
    assert row.cost_usd == pytest.approx(price * row.gpu_hours)


def test_window_cost_uses_the_stored_cost_without_a_price() -> None:
    doc = window(price=2.0)
    assert stored_window_cost(doc) == pytest.approx(2.0 * 10 / 3600)
    assert stored_window_cost(doc, 36.0) == pytest.approx(0.1)


# ---- per model -----------------------------------------------------------------------


def share(
    model: str,
    start: float,
    tokens: int,
    *,
    completion: int | None = None,
    gpu: str = "0",
    allocated: float | None = None,
    uncosted: int = 0,
    requests: int = 1,
) -> ModelWindow:
    return ModelWindow(
        model=model,
        gpu=gpu,
        node="node-a",
        window_start=start,
        requests=requests,
        total_tokens=tokens,
        completion_tokens=tokens // 2 if completion is None else completion,
        allocated_cost_usd=allocated,
        uncosted=uncosted,
    )


def test_models_share_windows_by_tokens() -> None:
    windows = [window(start=1000), window(start=1010, util=100, energy=3000)]
    shares = [
        share("a", 1000, 750, allocated=0.0075),
        share("b", 1000, 250, allocated=0.0025),
        share("a", 1010, 1000, allocated=0.01),
    ]
    report = summarize(windows, by="model", shares=shares)
    a, b = report.rows
    assert (a.key, b.key) == ("a", "b")
    assert a.cost_usd == pytest.approx(0.0175)
    assert b.cost_usd == pytest.approx(0.0025)
    assert a.energy_j == pytest.approx(2000 * 0.75 + 3000)
    assert b.energy_j == pytest.approx(500)
    assert a.gpu_hours == pytest.approx(17.5 / 3600)
    assert a.busy_cost_usd == pytest.approx(0.0075 * 0.5 + 0.01)
    assert a.windows == 2
    # The total is the sum of the models: here every window had tokens.
    assert report.total.cost_usd == pytest.approx(0.02)
    assert report.total.total_tokens == 2000
    assert report.total.gpu_hours == pytest.approx(20 / 3600)


def test_models_what_if_price_divides_the_new_cost_the_same_way() -> None:
    windows = [window(start=1000)]
    shares = [share("a", 1000, 750, allocated=0.0075), share("b", 1000, 250, allocated=0.0025)]
    a, b = summarize(windows, by="model", shares=shares, price_per_hour_usd=36.0).rows
    assert a.cost_usd == pytest.approx(0.075)
    assert b.cost_usd == pytest.approx(0.025)
    assert a.usd_per_million_tokens == pytest.approx(b.usd_per_million_tokens)


def test_uncosted_events_are_counted_but_not_costed_from_a_partial_sum() -> None:
    # The window was written before the last event arrived: the stored total is short.
    windows = [window(start=1000, prompt=300, completion=200)]
    shares = [share("a", 1000, 1000, allocated=None, uncosted=1, requests=2)]
    report = summarize(windows, by="model", shares=shares)
    (a,) = report.rows
    assert report.uncosted_events == 1
    assert a.total_tokens == 1000
    # The share is capped at the whole window: never more than the GPU cost.
    assert a.cost_usd == pytest.approx(0.01)


def test_events_whose_window_is_not_written_yet() -> None:
    report = summarize([], by="model", shares=[share("a", 2000, 100, uncosted=1)])
    (a,) = report.rows
    assert a.total_tokens == 100
    assert a.cost_usd == 0.0
    assert a.energy_j is None
    assert a.gpu_hours == 0.0
    finite_json(report.to_dict())


# ---- empty ---------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["gpu", "model"])
def test_empty_input_is_an_empty_report(by: Any) -> None:
    report = summarize([], by=by)
    assert report.rows == []
    assert report.total.total_tokens == 0
    assert report.total.cost_usd == 0.0
    assert report.total.usd_per_million_tokens is None
    assert report.total.mean_power_w is None
    text = finite_json(report.to_dict())
    assert "NaN" not in text


def test_a_row_without_tokens_has_no_cost_per_token() -> None:
    (row,) = by_gpu([window(prompt=0, completion=0, requests=0)])
    assert row.usd_per_million_tokens is None
    assert row.usd_per_million_output_tokens is None
    assert row.joules_per_token is None
    finite_json(row.to_dict())


def test_row_dict_has_every_figure_the_table_shows() -> None:
    keys = set(by_gpu([window()])[0].to_dict())
    assert {
        "total_tokens",
        "completion_tokens",
        "gpu_hours",
        "cost_usd",
        "busy_cost_usd",
        "allocated_cost_usd",
        "usd_per_million_tokens",
        "usd_per_million_output_tokens",
        "joules_per_token",
        "mean_power_w",
        "mean_gpu_util_pct",
    } <= keys
    assert isinstance(by_gpu([window()])[0], Row)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (True, None), ("x", None), (float("nan"), None), (float("inf"), None), (2, 2.0)],
)
def test_number(value: Any, expected: float | None) -> None:
    result = number(value)
    assert result == expected
    assert result is None or math.isfinite(result)


# ---- per tenant ----------------------------------------------------------------------


def test_tenants_share_windows_and_have_a_cost_per_request() -> None:
    windows = [window(start=1000)]
    shares = [
        share("team-a", 1000, 750, allocated=0.0075, requests=3),
        share("team-b", 1000, 250, allocated=0.0025, requests=1),
    ]
    report = summarize(windows, by="tenant", shares=shares)
    a, b = report.rows
    assert (a.key, b.key) == ("team-a", "team-b")
    assert a.usd_per_request == pytest.approx(0.0025)
    assert b.usd_per_request == pytest.approx(0.0025)
    assert a.usd_per_million_tokens == pytest.approx(b.usd_per_million_tokens)
    assert report.to_dict()["rows"][0]["usd_per_request"] == pytest.approx(0.0025)
    assert summarize([], by="tenant").total.usd_per_request is None
