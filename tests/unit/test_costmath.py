"""The shared cost arithmetic, and that the engine, the report and the replay use it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.costmath import mean, ratio, sum_all, sum_known, window_price
from gpucost.report.summary import stored_window_cost
from gpucost.runtime.cost import TokenTotals, cost_of_window

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "gpucost"


def test_ratio_keeps_unknown_apart_from_zero() -> None:
    assert ratio(1.0, 4) == 0.25
    assert ratio(0.0, 4) == 0.0
    assert ratio(None, 4) is None
    assert ratio(1.0, 0) is None
    assert ratio(1e308, 1e-308) is None  # not finite


def test_sums() -> None:
    assert sum_known([1.0, None, 2.0]) == 3.0
    assert sum_known([None, None]) is None
    assert sum_all([1.0, 2.0]) == 3.0
    assert sum_all([1.0, None]) is None
    assert sum_all([]) is None
    assert mean([1.0, 2.0]) == 1.5
    assert mean([]) is None


@given(
    price=st.floats(min_value=0, max_value=1000, allow_nan=False),
    window_s=st.floats(min_value=0.001, max_value=3600, allow_nan=False),
)
def test_engine_and_report_price_a_window_alike(price: float, window_s: float) -> None:
    engine = cost_of_window(
        "0", 0.0, window_s=window_s, samples=[], tokens=TokenTotals(), price_per_hour_usd=price
    )
    report = stored_window_cost({"window_s": window_s}, price_per_hour_usd=price)
    assert engine.cost_usd == report == window_price(price, window_s)
    assert math.isclose(window_price(price, 3600), price)


def test_no_module_keeps_its_own_copy() -> None:
    copies = [
        f"{path.relative_to(SRC)}: {name}"
        for path in SRC.rglob("*.py")
        if path.name != "costmath.py"
        for name in re.findall(
            r"^def (_?(?:ratio|sum_known|sum_all|window_price))\(", path.read_text(), re.M
        )
    ]
    assert copies == []
