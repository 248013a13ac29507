"""How events become `token_usage` documents.

`_id` is the event's `event_id`: the primary key is the idempotency check, so a
redelivered event is a duplicate-key no-op. A window's events are found through the
`(node, gpu, window_start)` index (mongo.py): a GPU is known by its node and its name
on that node, so two hosts' GPU 0 are two GPUs. An earlier version keyed documents by
`<gpu>|<ts ms>|<event_id>` to make windows primary-key ranges without a second index;
SecantusDB answers such ranges with a collection scan (4 s per window at 60,000
documents, growing with the collection), so the index's cost on inserts is the price
of window work that stays proportional to the window. Windows are computed in integer
milliseconds so the same event always lands in the same window.
"""

from __future__ import annotations

from typing import Any

from gpucost.runtime.cost import ts_ms, width_ms
from gpucost.runtime.events import TokenEvent, event_ts

Document = dict[str, Any]


def window_of(ts_millis: int, window_s: float) -> float:
    """Start, in seconds, of the window holding a time in ms: [k·W, (k+1)·W)."""
    width = width_ms(window_s)
    return (ts_millis // width) * width / 1000


def window_filter(node: str, gpu: str, window_start: float) -> Document:
    """The events of one window of one GPU of one node (served by the `window` index)."""
    return {"node": node, "gpu": gpu, "window_start": window_start}


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
