"""The arithmetic every cost figure shares: a window's price, ratios and sums that
keep "unknown" (None) apart from zero.

Pure and dependency-free, so the runtime's cost engine (`runtime/cost.py`), the
report over stored windows (`report/summary.py`) and the trace replay
(`report/replay.py`) compute each figure the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

SECONDS_PER_HOUR = 3600.0


def window_price(price_per_hour_usd: float, window_s: float) -> float:
    """What a window of `window_s` seconds costs at an hourly price, busy or idle."""
    return price_per_hour_usd * window_s / SECONDS_PER_HOUR


def ratio(numerator: float | None, divisor: float) -> float | None:
    """numerator / divisor; None when the numerator is unknown, the divisor is 0 or
    the quotient is not finite (a per-token cost of a window without tokens)."""
    if numerator is None or divisor == 0:
        return None
    value = numerator / divisor
    return value if math.isfinite(value) else None


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def sum_known(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None only when none is known."""
    known = [v for v in values if v is not None]
    return math.fsum(known) if known else None


def sum_all(values: Sequence[float | None]) -> float | None:
    """The sum, or None unless every value is known: a partial energy sum would mislead."""
    if not values or any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None)
