"""How events become `token_usage` documents.

`_id` is the event's `event_id`: the primary key is the idempotency check, so a
redelivered event is a duplicate-key no-op. A window's events are found through the
`(gpu, window_start)` index (mongo.py). An earlier version keyed documents by
`<gpu>|<ts ms>|<event_id>` to make windows primary-key ranges without a second index;
SecantusDB answers such ranges with a collection scan (4 s per window at 60,000
documents, growing with the collection), so the index's cost on inserts is the price
of window work that stays proportional to the window. Windows are computed in integer
milliseconds so the same event always lands in the same window.
"""

from __future__ import annotations

from typing import Any

from gpucost.runtime.events import TokenEvent, event_ts

Document = dict[str, Any]


def ts_ms(ts: float) -> int:
    return int(ts * 1000) if ts >= 0 else -int(-ts * 1000)


def window_ms(window_s: float) -> int:
    return round(window_s * 1000)


def window_of(ts_millis: int, window_s: float) -> float:
    """Start, in seconds, of the window holding a time in ms: [k·W, (k+1)·W)."""
    width = window_ms(window_s)
    return (ts_millis // width) * width / 1000


def window_filter(gpu: str, window_start: float) -> Document:
    """The events of one window of one GPU (served by the `window` index)."""
    return {"gpu": gpu, "window_start": window_start}


def event_document(
    event: TokenEvent,
    gpu: str,
    window_s: float,
    *,
    partition: int,
    offset: int,
    received_at: float,
) -> Document:
    millis = ts_ms(event_ts(event))
    event_id = str(event.event_id)
    return {
        "_id": event_id,
        "event_id": event_id,
        "ts": event_ts(event),
        "window_start": window_of(millis, window_s),
        "window_s": window_s,
        "gpu": gpu,
        "node": event.node,
        "model": event.model,
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "total_tokens": event.total_tokens,
        "latency_ms": event.latency_ms,
        "producer": event.producer,
        # Only version 2 events (the metering proxy's) know who sent the request.
        "tenant": getattr(event, "tenant", None),
        "received_at": received_at,
        "kafka": {"partition": partition, "offset": offset},
        # Filled in when the window is written.
        "costed": False,
        "cost_per_token": None,
        "allocated_cost_usd": None,
    }
