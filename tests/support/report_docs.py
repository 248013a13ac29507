"""`gpu_metrics` and `token_usage` documents shaped as the processor writes them."""

from __future__ import annotations

from typing import Any

PRICE = 3.6  # $/h: a 10 s window costs exactly $0.01


def window(
    gpu: str = "0",
    start: float = 1000.0,
    *,
    prompt: int = 600,
    completion: int = 400,
    requests: int = 2,
    util: float | None = 50.0,
    power: float | None = 200.0,
    energy: float | None = 2000.0,
    price: float = PRICE,
    window_s: float = 10.0,
) -> dict[str, Any]:
    """A `gpu_metrics` document shaped as the processor writes it."""
    cost = price * window_s / 3600
    tokens = prompt + completion
    return {
        "gpu": gpu,
        "window_start": start,
        "window_end": start + window_s,
        "window_s": window_s,
        "requests": requests,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": tokens,
        "cost_usd": cost,
        "busy_cost_usd": None if util is None else cost * util / 100,
        "energy_j": energy,
        "mean_power_w": power,
        "mean_gpu_util_pct": util,
        "sample_count": 10,
        "source": "seed",
        "cost_per_token": cost / tokens if tokens else None,
        "joules_per_token": energy / tokens if energy is not None and tokens else None,
        "node": "node-a",
        "price_per_hour_usd": price,
    }


def usage(
    event_id: str,
    model: str,
    start: float,
    *,
    prompt: int,
    completion: int,
    gpu: str = "0",
    cost_per_token: float | None = None,
    window_s: float = 10.0,
) -> dict[str, Any]:
    """A `token_usage` document; costed when `cost_per_token` is given."""
    tokens = prompt + completion
    ts = start + window_s / 2
    return {
        "_id": event_id,
        "event_id": event_id,
        "ts": ts,
        "window_start": start,
        "window_s": window_s,
        "gpu": gpu,
        "node": "node-a",
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": tokens,
        "costed": cost_per_token is not None,
        "cost_per_token": cost_per_token,
        "allocated_cost_usd": None if cost_per_token is None else tokens * cost_per_token,
    }
